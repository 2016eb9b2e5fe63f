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
