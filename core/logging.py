"""Log records with the request id, and the JSON format production logs are written in."""

import logging

from pythonjsonlogger.json import JsonFormatter

from core.request_id import request_id


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (empty outside a request or a task it started) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class HashcartJsonFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, request id, and any extras."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
