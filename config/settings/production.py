"""Production: every secret comes from the environment and has no default.

Importing this module without ``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL``,
``ALLOWED_HOSTS``, ``HASHCART_SITE_URL`` (an https address) or ``HASHCART_CREDENTIALS_KEY``
(Fernet keys, none of them ``SECRET_KEY``) raises ``ImproperlyConfigured``: the process refuses
to start.

The fake world (``sandbox``) and the tools (``devtools``) are not installed: the platforms are X
and Mastodon, cards and payments go to Stripe and labels come from EasyPost, unless the
environment names other real ones. A setting that names the sandbox is refused at start.
"""

from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    FAKE_WORLD_APPS,
    INSTALLED_APPS,
    card_vault_path,
    database_from_env,
    env,
)

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
    # Merchants' webhook endpoints: https and public addresses only.
    "WEBHOOKS": {**HASHCART["WEBHOOKS"], "REQUIRE_HTTPS": True},  # noqa: F405
}

# --- Real implementations only ------------------------------------------------------------------
INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in FAKE_WORLD_APPS]


def _fake(path: str) -> bool:
    return path.partition(".")[0] in FAKE_WORLD_APPS


HASHCART["PLATFORM_ADAPTERS"] = {
    platform: path for platform, path in HASHCART["PLATFORM_ADAPTERS"].items() if not _fake(path)
}
HASHCART["CARRIERS"] = {
    name: path for name, path in HASHCART["CARRIERS"].items() if not _fake(path)
}
HASHCART["DEFAULT_PLATFORM"] = env.str("HASHCART_DEFAULT_PLATFORM", default="x")
HASHCART["CARD_VAULT"] = card_vault_path(env.str("HASHCART_CARD_VAULT", default="stripe"))
HASHCART["PAYMENT_GATEWAY"] = env.str(
    "HASHCART_PAYMENT_GATEWAY", default="orders.payments.stripe.StripeGateway"
)
HASHCART["DEFAULT_CARRIER"] = env.str("HASHCART_CARRIER", default="easypost")
for _variable, _path in [
    ("HASHCART_CARD_VAULT", HASHCART["CARD_VAULT"]),
    ("HASHCART_PAYMENT_GATEWAY", HASHCART["PAYMENT_GATEWAY"]),
]:
    if _fake(_path):
        raise ImproperlyConfigured(
            f"{_variable} names {_path!r}, which production does not install: name a real one."
        )
for _variable, _name, _choices in [
    ("HASHCART_DEFAULT_PLATFORM", HASHCART["DEFAULT_PLATFORM"], HASHCART["PLATFORM_ADAPTERS"]),
    ("HASHCART_CARRIER", HASHCART["DEFAULT_CARRIER"], HASHCART["CARRIERS"]),
]:
    if _name not in _choices:
        raise ImproperlyConfigured(
            f"{_variable} is {_name!r}, which production does not have: choose one of "
            f"{', '.join(sorted(_choices))}."
        )

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
