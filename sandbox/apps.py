from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The fake world: a social network, a card vault, a payment gateway and a carrier, all in
    the database, for the demo, the tests and the benchmarks (DESIGN §2). Domain code reaches it
    only through the dotted paths in settings; production leaves it out."""

    name = "sandbox"
    verbose_name = "Sandbox"
