"""The parsing benchmark behind ``bench_parse`` (issue 10, item 1).

Each adversarial shape is a short unit repeated to the size asked: dotted runs (``a.a.a.…``, the
shape that took twitter-text's URL pattern 150 s at 10,000 characters), hashtags glued to them,
URLs whose path holds hashtags, domains that fail at the end, parentheses, other scripts and
hashtag floods. A post is timed through X's normalisation without entities (so the URL check
around hashtags runs), which is what a poller pays per post.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from social.platforms.x_posts import inbound_from_item

SHAPES: dict[str, str] = {
    "dotted run": "a.",
    "dotted run, two letters": "ab.",
    "dotted run with hashtags": "a.a.#a.",
    "hashtags ending in a dot": "#a.",
    "hashtags ending in a dash": "#a-a.a-",
    "domain failing at its end": "a.a.a-.com/#a",
    "hashtag in every URL path": "a.co/#x",
    "protocol URLs with hashtags": "http://a.a.a.a/#a.",
    "unbalanced parentheses": "a.co/((#x)",
    "other script and domains": "日a.#日a.",
    "accented letters": "éa.#é",
    "digit runs": "#1111a.",
    "hashtag flood": "#a ",
    "dots, then a hashtag": "a." * 200 + "#a.",
}
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def adversarial_text(unit: str, size: int) -> str:
    """``unit`` repeated and cut to ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def parse_post(text: str) -> None:
    """One post through X's normalisation, hashtags read from its text."""
    inbound_from_item(
        {"id": "1", "author_id": "2", "text": text, "created_at": "2026-01-01T00:00:00Z"},
        users={},
        referenced={},
        fetched_at=FETCHED_AT,
    )


@dataclass(frozen=True)
class Timing:
    shape: str
    size: int
    seconds: float  # the median over the repeats, of the process's CPU time


def time_shapes(
    *, sizes: list[int], repeat: int, parse: Callable[[str], None] = parse_post
) -> list[Timing]:
    """Every shape at every size: the median CPU time of ``repeat`` parses of one post (CPU
    time, so that other processes on the machine count less; the median, so one preemption
    does not decide)."""
    timings = []
    for shape, unit in SHAPES.items():
        for size in sizes:
            text = adversarial_text(unit, size)
            runs = []
            for _ in range(repeat):
                started = time.process_time()
                parse(text)
                runs.append(time.process_time() - started)
            timings.append(Timing(shape=shape, size=size, seconds=statistics.median(runs)))
    return timings
