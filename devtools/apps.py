from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Benchmarks and the demo (``bench_*``, ``seed_demo``, ``run_demo``): tools that drive the
    product from outside. No domain module imports them; production leaves them out."""

    name = "devtools"
    verbose_name = "Developer tools"
