"""Production: every secret comes from the environment and has no default.

Importing this module without ``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL``,
``ALLOWED_HOSTS``, ``HASHCART_SITE_URL`` (an https address) or ``HASHCART_CREDENTIALS_KEY``
(Fernet keys, none of them ``SECRET_KEY``) raises ``ImproperlyConfigured``: the process refuses
to start.
"""

from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import database_from_env, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")

# Every e-mailed link ("Not me", confirm by e-mail) starts with it: the development default
# (127.0.0.1) would send buyers nowhere, and a plain http link would carry its token in clear.
SITE_URL = env.str("HASHCART_SITE_URL")
if urlsplit(SITE_URL).scheme != "https" or not urlsplit(SITE_URL).hostname:
    raise ImproperlyConfigured(
        f"HASHCART_SITE_URL must be the site's https address, like https://shop.example.com "
        f"(got {SITE_URL!r})."
    )
HASHCART = {
    **HASHCART,  # noqa: F405
    "SANDBOX_PAGE": False,
    "STAFF_MFA_REQUIRED": True,
    "SITE_URL": SITE_URL,
}

# Platform accounts' credentials: keys of their own, so that a leaked or rotated SECRET_KEY
# neither exposes nor loses them.
CREDENTIALS_KEYS = env.list("HASHCART_CREDENTIALS_KEY", default=[])
if not CREDENTIALS_KEYS:
    raise ImproperlyConfigured(
        "Set the HASHCART_CREDENTIALS_KEY environment variable: a Fernet key, as "
        "cryptography.fernet.Fernet.generate_key() makes (README: Running on PostgreSQL)."
    )
for _key in CREDENTIALS_KEYS:
    if _key == SECRET_KEY:
        raise ImproperlyConfigured("HASHCART_CREDENTIALS_KEY must not be the SECRET_KEY.")
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "HASHCART_CREDENTIALS_KEY holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from None
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DATABASES = {"default": database_from_env(env.str("DATABASE_URL"))}
REDIS_URL = env.str("REDIS_URL")

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
CELERY_BROKER_URL = REDIS_URL
# An unacknowledged message (its worker died) is delivered again after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}

# --- HTTPS and cookies ------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")

# --- Logs: one JSON object per line, with the request id ------------------------------------------
LOGGING["handlers"]["console"]["formatter"] = env.str("LOG_FORMAT", default="json")  # noqa: F405
