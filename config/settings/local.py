"""Development and demo: the embedded defaults, debug on, e-mail to the console."""

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
HASHCART = {**HASHCART, "SANDBOX_PAGE": True}  # noqa: F405

VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "celery" / "queue").mkdir(parents=True, exist_ok=True)
