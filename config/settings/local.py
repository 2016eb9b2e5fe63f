"""Development and demo: the embedded defaults, debug on, e-mail to the console."""

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
HASHCART = {
    **HASHCART,  # noqa: F405
    "SANDBOX_PAGE": True,
    "STAFF_MFA_REQUIRED": env.bool("HASHCART_STAFF_MFA_REQUIRED", default=False),
}

VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "celery" / "queue").mkdir(parents=True, exist_ok=True)
(VAR_DIR / "celery" / "control").mkdir(parents=True, exist_ok=True)
