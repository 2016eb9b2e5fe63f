"""Settings of the fault suite's Celery workers: the test settings, with the sandbox platform
and gateway wrapped by the suite's shims (``tests.faults.shims``), which hold a send or an
authorization in flight on request so that a worker can be killed in the middle of it.

Test-only: no product setting or module refers to this file.
"""

from config.settings.test import *  # noqa: F403
from config.settings.test import HASHCART

HASHCART = {
    **HASHCART,
    "PLATFORM_ADAPTERS": {
        **HASHCART["PLATFORM_ADAPTERS"],
        "sandbox": "tests.faults.shims.HoldingSandboxAdapter",
    },
    "PAYMENT_GATEWAY": "tests.faults.shims.FaultySandboxGateway",
}

# Between scenarios the test process empties the database (TRUNCATE) while these workers go on
# polling and sweeping; when the two lock each other, PostgreSQL aborts whichever waiter checks
# first. The workers check after 50 ms (the default is 1 s), so they are the ones aborted (their
# tasks retry) and the suite's flush goes through.
DATABASES = {
    "default": {
        **DATABASES["default"],  # noqa: F405
        "OPTIONS": {
            **DATABASES["default"].get("OPTIONS", {}),  # noqa: F405
            "options": "-c deadlock_timeout=50ms",
        },
    }
}
