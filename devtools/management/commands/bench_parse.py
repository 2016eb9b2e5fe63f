"""``bench_parse``: the worst time to parse one adversarial post, by size, and its growth."""

import itertools
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.parse_bench import time_shapes


class Command(BaseCommand):
    help = (
        "Time the parsing of adversarial posts (dotted runs and other pathological shapes) at "
        "each size; print the worst time per post and how it grows with the size."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sizes",
            default="280,2000,10000",
            help="Post sizes in characters, comma-separated (default 280,2000,10000).",
        )
        parser.add_argument("--repeat", type=int, default=5, help="Parses per shape and size.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sizes = sorted({int(size) for size in options["sizes"].split(",")})
        except ValueError:
            raise CommandError("--sizes takes integers separated by commas.") from None
        if not sizes or sizes[0] < 1 or options["repeat"] < 1:
            raise CommandError("--sizes and --repeat must be positive.")
        timings = time_shapes(sizes=sizes, repeat=options["repeat"])
        self.stdout.write(f"{'shape':<30}" + "".join(f"{size:>12,}" for size in sizes))
        for shape in dict.fromkeys(t.shape for t in timings):
            row = [t.seconds * 1000 for t in timings if t.shape == shape]
            self.stdout.write(f"{shape:<30}" + "".join(f"{ms:>9.3f} ms" for ms in row))
        worst = {
            size: max((t for t in timings if t.size == size), key=lambda t: t.seconds)
            for size in sizes
        }
        self.stdout.write("worst time per post (median CPU time of the worst shape):")
        for size, timing in worst.items():
            self.stdout.write(
                f"  {size:>7,} chars: {timing.seconds * 1000:8.3f} ms ({timing.shape})"
            )
        for small, large in itertools.pairwise(sizes):
            growth = worst[large].seconds / max(worst[small].seconds, 1e-9)
            self.stdout.write(
                f"  growth {small:,} -> {large:,} chars: x{growth:.1f} "
                f"(linear: x{large / small:.1f})"
            )
