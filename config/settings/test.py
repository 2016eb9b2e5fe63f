"""Test settings: explicit and fast. PostgreSQL when ``DATABASE_URL`` is set, else SQLite.

``REQUIRE_SERVICES=1`` (set by CI) turns the skip of a service-bound test into a failure.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = "hashcart-test-secret-key-not-for-any-real-use-0123456789"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REQUIRE_SERVICES = env.bool("REQUIRE_SERVICES", default=False)
# Tests post and poll in the same instant; they set the clock themselves where it matters.
HASHCART = {**HASHCART, "SANDBOX_PAGE": True, "SANDBOX_SETTLE_MS": 0}  # noqa: F405

# A Redis cache outlives the run: allauth's throttles (one confirmation e-mail per address per
# few minutes, failed sign-ins per IP) would carry over from the previous run. Each run keys its
# cache entries apart.
if REDIS_URL:  # noqa: F405
    import uuid

    CACHES = {
        "default": {**CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}  # noqa: F405
    }

# The suite makes thousands of API requests as the same few logins (the schema fuzzer): keep
# the per-user throttle out of their way. Its production rate is HASHCART_API_RATE.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "1000000/minute"},
}
