"""Settings shared by every run mode, read from the environment (DESIGN §9).

With no environment at all Hashcart runs on embedded defaults: SQLite under ``var/`` and
kombu's filesystem broker under ``var/celery``. ``DATABASE_URL`` and ``REDIS_URL`` switch to
PostgreSQL and Redis. ``env`` below is the one reader of the environment; a ``.env`` file at the
repository root is read too when present.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

VAR_DIR = Path(env.str("HASHCART_VAR_DIR", default=str(BASE_DIR / "var")))

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Development-only key; production settings demand SECRET_KEY with no default.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-hashcart-local-development-only-key")
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Apps no domain module imports, reached only through the dotted paths below.
FAKE_WORLD_APPS = ["sandbox", "devtools"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    # API tokens stored as digests, with an expiry (accounts.services.api_tokens).
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.twitter_oauth2",
    "csp",
    "health_check",
    # CSV import and export of products, variants and campaigns in the admin (catalog.resources).
    "import_export",
    "core",
    "accounts",
    "catalog",
    "social",
    "orders",
    "fulfillment",
    # The fake world (sandbox network, vault, gateway, carrier) and the benchmarks and demo:
    # development, the demo and the tests have them; production leaves them out (DESIGN §2).
    *FAKE_WORLD_APPS,
]

MIDDLEWARE = [
    "core.request_id.request_id_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.staff_mfa_required",
    "accounts.middleware.merchant_time_zone",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- The merchant API (DRF, DESIGN §10.3) ---------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.HashedTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.IsMerchantStaff", "core.api.HasActionPermission"],
    "DEFAULT_PAGINATION_CLASS": "core.api.NewestFirst",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("HASHCART_API_RATE", default="600/minute")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.api_exception_handler",
}
# Tokens expire this many days after ``api_token`` issues them; the header stays
# ``Authorization: Token <key>``.
REST_KNOX: dict[str, Any] = {
    "TOKEN_TTL": timedelta(days=env.int("HASHCART_API_TOKEN_DAYS", default=90)),
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Hashcart merchant API",
    "DESCRIPTION": "Campaigns, orders and shipments of the merchant a staff token belongs to. "
    "Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # A campaign's ``platform`` and ``platforms`` share one choice set: one name for it.
    "ENUM_NAME_OVERRIDES": {"PlatformEnum": "social.models.Platform"},
    # OpenAPI 3.1: its ``webhooks`` section documents the payloads sent to merchants' endpoints
    # (orders.webhook_apis.WEBHOOKS).
    "OAS_VERSION": "3.1.0",
    "WEBHOOKS": [
        f"orders.webhook_apis.{family}_WEBHOOK"
        for family in ("ORDER", "RETURN", "DISPUTE", "CAMPAIGN")
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_errors",
    ],
}

# --- Sign-in (django-allauth, DESIGN §6) -------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:link"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# allauth's defaults throttle failed sign-ins, sign-ups, resets and confirmation mails per IP and
# per account; they are kept as they are (the throttling §6 asks for), with the cache as store.
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Hashcart: "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Hashcart"
# Social accounts only connect an X identity to a signed-in cardholder; they never sign anyone in.
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_PROVIDERS: dict[str, Any] = {
    "twitter_oauth2": {
        "APPS": [
            {
                "client_id": env.str("X_OAUTH_CLIENT_ID", default=""),
                "secret": env.str("X_OAUTH_CLIENT_SECRET", default=""),
            }
        ]
        if env.str("X_OAUTH_CLIENT_ID", default="")
        else [],
        "OAUTH_PKCE_ENABLED": True,
    }
}

# --- Stripe (HASHCART["PAYMENT_GATEWAY"] = "orders.payments.stripe.StripeGateway") -------------
# Encrypt platform accounts' credentials at rest (Fernet keys, comma-separated: the first
# encrypts, all decrypt; ``social.credentials``). Required in production; elsewhere a key
# derived from SECRET_KEY stands in when it is not set.
CREDENTIALS_KEYS: list[str] = env.list("HASHCART_CREDENTIALS_KEY", default=[])
# X API v2: where to send requests (a local emulator in tests), and which spelling of the
# renamed fields to request: "auto" follows what X accepts, per account (``social.platforms.x``);
# "tweet" forces tweet.fields, as in v2.159 and every recording; "post" forces post.fields, as
# in v2.167. Responses in either spelling are understood.
X_API_BASE_URL = env.str("X_API_BASE_URL", default="https://api.x.com")
X_FIELD_SPELLING = env.str("X_FIELD_SPELLING", default="auto")
if X_FIELD_SPELLING not in ("auto", "tweet", "post"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"X_FIELD_SPELLING must be auto, tweet or post, not {X_FIELD_SPELLING!r}"
    )
# Seconds a post may take to show in X's mentions timeline: the feed's high-water mark lags
# the read by this much, so that expiry never outruns a confirmation still being indexed.
X_INDEX_DELAY_SECONDS = env.int("X_INDEX_DELAY_SECONDS", default=30)
# The Mastodon server of a brand account without its own ``api_base_url`` credential.
MASTODON_API_BASE_URL = env.str("MASTODON_API_BASE_URL", default="https://mastodon.social")
# The Bluesky service (the brand account's PDS, which also answers the AppView's reads) of an
# account without its own ``service_url`` credential (``social.platforms.bluesky``).
BLUESKY_SERVICE_URL = env.str("BLUESKY_SERVICE_URL", default="https://bsky.social")
EASYPOST_API_KEY = env.str("EASYPOST_API_KEY", default="")
EASYPOST_WEBHOOK_SECRET = env.str("EASYPOST_WEBHOOK_SECRET", default="")
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")

# --- Content Security Policy (django-csp) -------------------------------------------------------
# Scripts, frames and connections only from the site and the payment provider's hosted fields.
_PAYMENT_ORIGINS = ["https://js.stripe.com", "https://*.stripe.com"]
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", *_PAYMENT_ORIGINS],
        "frame-src": ["'self'", *_PAYMENT_ORIGINS],
        "connect-src": ["'self'", "https://api.stripe.com"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", "https://x.com", "https://twitter.com"],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates and times as "30 Nov 2026 14:05 EST": the zone is always shown (issue 14).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database ---------------------------------------------------------------------------------
# Web, worker and beat all write one SQLite file in the embedded mode: WAL lets readers run beside
# the writer, IMMEDIATE transactions take the write lock up front (no upgrade deadlocks) and the
# timeout waits for it instead of failing with "database is locked".
SQLITE_OPTIONS: dict[str, Any] = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def database_from_env(url: str | None) -> dict[str, Any]:
    """The default database: ``url`` if given, else SQLite under ``var/``."""
    config = env.db_url_config(url or f"sqlite:///{VAR_DIR / 'hashcart.sqlite3'}")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    else:
        config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_from_env(env.str("DATABASE_URL", default=None))}

# --- Redis: broker and cache ------------------------------------------------------------------
REDIS_URL: str | None = env.str("REDIS_URL", default=None)

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CELERY_BROKER_URL = REDIS_URL
    # An unacknowledged message (its worker died) is delivered again after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # kombu's filesystem transport: a broker that needs no server, for the embedded mode. Its
    # exchange table goes under var/ too (kombu's default is ./control, in the repository).
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }

# --- Celery -----------------------------------------------------------------------------------
# Tasks are idempotent and take ids (DESIGN §5.4): acknowledge after running, and give a message
# back to the queue when its worker dies, so that a lost worker only delays work.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes the database connection after every task unless this is set, and a new
# PostgreSQL connection costs more than deciding a batch of a hundred posts. Workers keep theirs
# as web processes do (``CONN_MAX_AGE``, health-checked): ``config.celery`` closes a connection
# that is too old or broken before and after each task.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = False
# Workers log through Django's LOGGING (request ids, JSON in production), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False


def _every(variable: str, default: float) -> dict[str, Any]:
    seconds = env.float(variable, default=default)
    # A beat message not picked up within its own interval is dropped, not piled up.
    return {"schedule": seconds, "options": {"expires": seconds}}


# The beat schedule: every periodic job, defined here and nowhere else. Each is also a
# management command: poll_feeds, send_replies (which also takes back lapsed reply claims, the
# replies' recovery), expire_orders, remind_orders, process_posts (the recovery sweep's work),
# reconcile_payments, alerts_sweep, send_webhooks and pipeline_tick (all of them, once).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "poll-feeds": {"task": "social.feeds_poll", **_every("HASHCART_POLL_INTERVAL_SECONDS", 2)},
    "send-replies": {
        "task": "social.replies_send_all",
        **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5),
    },
    "run-payments": {"task": "orders.payments_run", **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5)},
    "private-requests": {
        "task": "orders.requests_private",
        **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5),
    },
    "send-emails": {
        "task": "orders.notifications_send",
        **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5),
    },
    "expire-orders": {
        "task": "orders.orders_expire",
        **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5),
    },
    "remind-orders": {
        "task": "orders.orders_remind",
        **_every("HASHCART_REMIND_INTERVAL_SECONDS", 30),
    },
    "recover": {"task": "orders.recover", **_every("HASHCART_RECOVER_INTERVAL_SECONDS", 30)},
    "recover-replies": {
        "task": "social.replies_recover",
        **_every("HASHCART_RECOVER_INTERVAL_SECONDS", 30),
    },
    "reconcile-payments": {
        "task": "orders.reconcile_payments",
        **_every("HASHCART_RECONCILE_INTERVAL_SECONDS", 86_400),
    },
    "send-webhooks": {
        "task": "orders.webhooks_send",
        **_every("HASHCART_SWEEP_INTERVAL_SECONDS", 5),
    },
    "track-shipments": {
        "task": "fulfillment.track_shipments",
        **_every("HASHCART_TRACK_INTERVAL_SECONDS", 900),
    },
    # Merchant alerts (orders.services.alerts.sweep): also when a late-shipment digest is due,
    # so the interval is how late after its chosen time a digest may go.
    "sweep-alerts": {
        "task": "orders.alerts_sweep",
        **_every("HASHCART_ALERTS_INTERVAL_SECONDS", 300),
    },
}

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Hashcart <orders@hashcart.localhost>")

# --- Logging ----------------------------------------------------------------------------------
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logging.HashcartJsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="plain"),
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}


# --- Hashcart ---------------------------------------------------------------------------------
def _seconds_or_off(variable: str, default: float) -> float | None:
    """A number of seconds from the environment, or None when it says "off"."""
    value = env.str(variable, default=str(default)).strip().lower()
    return None if value == "off" else float(value)


# The card vaults HASHCART_CARD_VAULT may name by a short name.
CARD_VAULTS = {
    "sandbox": "sandbox.vault.SandboxVault",
    "stripe": "accounts.stripe_vault.StripeVault",
}


def card_vault_path(value: str) -> str:
    """The vault's dotted path for ``value``: a name in ``CARD_VAULTS``, or a dotted path."""
    return CARD_VAULTS.get(value, value)


# The sales-tax calculators HASHCART_TAX may name by a short name (DESIGN §3.8).
TAX_CALCULATORS = {
    "table": "orders.tax.table.TableTax",
    "stripe": "orders.tax.stripe.StripeTax",
}
_TAX = env.str("HASHCART_TAX", default="table")

# How long a card hold lasts after authorization: captures and voids are retried until then.
_AUTHORIZATION_HOLD_SECONDS = env.float("HASHCART_AUTHORIZATION_HOLD_HOURS", default=120) * 3600
HASHCART = {
    # Minutes a buyer has to post the confirmation hashtag once the reply is posted (§3.3).
    # (A float, so that end-to-end tests can use a window of seconds.)
    "CONFIRMATION_WINDOW_MINUTES": env.float("HASHCART_CONFIRMATION_WINDOW_MINUTES", default=15),
    # Minutes before a confirmation window closes when the buyer gets one reminder e-mail.
    "REMINDER_MINUTES": env.float("HASHCART_REMINDER_MINUTES", default=5),
    # How far back the daily reconciliation compares the gateway's books with the orders.
    "RECONCILE_DAYS": env.int("HASHCART_RECONCILE_DAYS", default=30),
    # Rows at which admin changelists stop counting exactly (they show "N+" beyond it).
    "ADMIN_COUNT_LIMIT": env.int("HASHCART_ADMIN_COUNT_LIMIT", default=10_000),
    # Terms of buying by post that a cardholder consents to (§6).
    "TERMS_VERSION": env.str("HASHCART_TERMS_VERSION", default="2026-11"),
    # Where e-mailed links point.
    "SITE_URL": env.str("HASHCART_SITE_URL", default="http://127.0.0.1:8000"),
    # Staff need TOTP to enter the admin (accounts.middleware); optional only in the local demo.
    "STAFF_MFA_REQUIRED": env.bool("HASHCART_STAFF_MFA_REQUIRED", default=True),
    # A #Link<CODE> code is valid this long (DESIGN §6).
    "LINK_CODE_MINUTES": env.int("HASHCART_LINK_CODE_MINUTES", default=15),
    # Purchase posts are blocked this long after linking an identity or changing address (§8).
    "COOLING_OFF_HOURS": env.int("HASHCART_COOLING_OFF_HOURS", default=24),
    # Staff answer a dispute ("Not me" after shipping) within this many days (DESIGN §3.4).
    "DISPUTE_DAYS": env.int("HASHCART_DISPUTE_DAYS", default=7),
    # A buyer may ask for a return this many days after delivery (DESIGN §3.4).
    "RETURN_DAYS": env.int("HASHCART_RETURN_DAYS", default=30),
    # Pending orders expire by this much feed lag even if the feed's high-water mark is stuck.
    "MAX_FEED_LAG_MINUTES": env.int("HASHCART_MAX_FEED_LAG_MINUTES", default=30),
    # A campaign lasts at most this long and ends within this long of now (no hashtag squatting).
    "MAX_CAMPAIGN_DAYS": env.int("HASHCART_MAX_CAMPAIGN_DAYS", default=366),
    # Refused hashtags and confirmation prefixes (clashes) a login may try per hour (catalog).
    "HASHTAG_REFUSALS_PER_HOUR": env.int("HASHCART_HASHTAG_REFUSALS_PER_HOUR", default=10),
    # Platform adapters, the card vault, the payment gateway and the carriers, by dotted path
    # (STYLE: like EMAIL_BACKEND). The sandbox ones are the ``sandbox`` app's.
    "PLATFORM_ADAPTERS": {
        "sandbox": "sandbox.adapter.SandboxAdapter",
        "x": "social.platforms.x.XAdapter",
        "mastodon": "social.platforms.mastodon.MastodonAdapter",
        "bluesky": "social.platforms.bluesky.BlueskyAdapter",
    },
    # The platform a new campaign is on unless its form says otherwise.
    "DEFAULT_PLATFORM": env.str("HASHCART_DEFAULT_PLATFORM", default="sandbox"),
    # Where the linking page sends card numbers (``accounts.vault``): HASHCART_CARD_VAULT is
    # "sandbox" (the test-card vault), "stripe" (the Payment Element and a SetupIntent; set the
    # STRIPE_* keys) or a dotted path.
    "CARD_VAULT": card_vault_path(env.str("HASHCART_CARD_VAULT", default="sandbox")),
    "PAYMENT_GATEWAY": env.str(
        "HASHCART_PAYMENT_GATEWAY", default="sandbox.gateway.SandboxGateway"
    ),
    # Sales tax (``orders.tax``): HASHCART_TAX is "table" (the shipped US rates table), "stripe"
    # (Stripe Tax's calculations; set STRIPE_SECRET_KEY) or a dotted path.
    "TAX": TAX_CALCULATORS.get(_TAX, _TAX),
    # Called in the transaction that marks an order paid, to schedule its shipment: orders does
    # not import fulfillment (fulfillment depends on orders, DESIGN §2).
    "ORDER_PAID_HANDLER": "fulfillment.services.shipment_schedule",
    # Called in the transaction that cancels a paid order, to cancel its shipment.
    "ORDER_CANCELLED_HANDLER": "fulfillment.services.shipment_cancel",
    # Called after the commit that approves a return, with its id, to buy its label (orders
    # does not import fulfillment; fulfillment's sweep buys any that this missed).
    "RETURN_APPROVED_HANDLER": "fulfillment.tasks.return_label_enqueue",
    # Called after the commit that queued webhook deliveries: send them soon (a task).
    "WEBHOOKS_QUEUED_HANDLER": "orders.tasks.webhooks_send_soon",
    # Called by social's poller with the ids of the inbox posts a feed read stored (committed),
    # for orders to decide them; and in the transaction that records a reply as posted, with its
    # post's id, kind and time, for orders to open the buyer's window (social does not import
    # orders, DESIGN §2).
    "POSTS_STORED_HANDLER": "orders.tasks.posts_decide_enqueue",
    "REPLY_SENT_HANDLER": "orders.services.order_window_open",
    # Units came back or someone joined a waitlist: promote its first waitlisters (a task).
    "WAITLIST_PROMOTE_HANDLER": "orders.tasks.waitlist_promote_enqueue",
    # catalog: staff raised a campaign's stock or resumed it (the same promotion).
    "CAMPAIGN_STOCK_ADDED_HANDLER": "orders.tasks.waitlist_promote_enqueue",
    # catalog's admin and API: the expression of a campaign's waitlist length (its demand).
    "CAMPAIGN_WAITLIST_LENGTH": "orders.selectors.waitlist_length_expression",
    "VARIANT_WAITLIST_LENGTH": "orders.selectors.variant_waitlist_length_expression",
    # Called by social with (platform=, now=) for the hashtags a "search" feed looks for: the
    # live campaigns' (social does not import catalog).
    "SEARCH_HASHTAGS_SOURCE": "catalog.selectors.live_hashtags",
    # The apps' checks on /healthz, after the database and the broker (core imports no app):
    # functions returning a ``core.health.HealthReport``.
    "HEALTH_CHECKS": ["social.health.feed_lag", "orders.health.payment_failures"],
    # Called by accounts, in the transaction that pauses buying, unlinks an identity, removes a
    # card or withdraws consent, to cancel the open orders it concerns (accounts does not import
    # orders, DESIGN §2).
    "CARDHOLDER_LOCKDOWN_HANDLER": "orders.services.cardholder_orders_cancel",
    # Lines of the cardholder's account log on their settings page from apps above accounts, each
    # ``(*, cardholder_id) -> [(when, what, detail)]`` (accounts does not import orders).
    "CARDHOLDER_LOG_SOURCES": ["orders.selectors.cardholder_order_log"],
    # Entries of an order's support timeline from apps above orders, each
    # ``(*, order) -> [orders.timeline.TimelineEntry]`` in a fixed number of queries (orders
    # does not import fulfillment).
    "ORDER_TIMELINE_SOURCES": ["fulfillment.timeline.shipment_timeline"],
    # The carrier's public tracking page of a shipment, for the buyer's order page:
    # ``(*, carrier, tracking_number) -> str`` ("" when the carrier has none; orders does not
    # import fulfillment).
    "TRACKING_URL_SOURCE": "fulfillment.selectors.shipment_tracking_url",
    # Merchant alerts (orders.services.alerts): a paid order is alerted when its card
    # authorization will be older than this many days before its ship-by day ends.
    "AUTH_LAPSE_DAYS": env.float("HASHCART_AUTH_LAPSE_DAYS", default=6),
    # The alert sweep's reads of fulfillment (orders does not import fulfillment, DESIGN §2):
    # the label queue (``(*, now, due_by) -> shipments``) and the late and at-risk shipments
    # (``(*, now, merchant_slug) -> rows`` with ``shipment``, ``state`` and ``reason``).
    "ALERT_LABELS_DUE_SOURCE": "fulfillment.selectors.labels_due",
    "ALERT_LATE_SHIPMENTS_SOURCE": "fulfillment.selectors.sla_rows",
    # Carriers by name, and the one labels are bought from (DESIGN §7).
    "CARRIERS": {
        "sandbox": "sandbox.carrier.SandboxCarrier",
        "easypost": "fulfillment.carriers.easypost.EasyPostCarrier",
    },
    "DEFAULT_CARRIER": env.str("HASHCART_CARRIER", default="sandbox"),
    # Where parcels leave from, and the default box, for carriers that rate by them (EasyPost).
    "SHIP_FROM": {
        "name": env.str("HASHCART_SHIP_FROM_NAME", default="Hashcart Fulfillment"),
        "street1": env.str("HASHCART_SHIP_FROM_STREET", default="1 Warehouse Way"),
        "city": env.str("HASHCART_SHIP_FROM_CITY", default="Memphis"),
        "state": env.str("HASHCART_SHIP_FROM_STATE", default="TN"),
        "zip": env.str("HASHCART_SHIP_FROM_ZIP", default="38118"),
        "country": "US",
    },
    "DEFAULT_PARCEL": {"length": 12, "width": 9, "height": 4, "weight": 32},
    # The sandbox carrier's script: hours after the label to in transit, out, delivered.
    "SANDBOX_CARRIER_HOURS": (1, 30, 32),
    # Signs carrier webhooks (the sandbox carrier's; EasyPost's uses EASYPOST_WEBHOOK_SECRET).
    "CARRIER_WEBHOOK_SECRET": env.str("HASHCART_CARRIER_WEBHOOK_SECRET", default=""),
    "HOLIDAY_COUNTRY": env.str("HASHCART_HOLIDAY_COUNTRY", default="US"),
    "HOLIDAY_SUBDIVISION": env.str("HASHCART_HOLIDAY_SUBDIVISION", default=""),
    # The pipeline.
    # A transaction that waits this long for a campaign's row lock (or any lock after it) fails
    # instead of waiting on (catalog.services.campaigns_lock): a stuck holder shows as errors.
    "LOCK_TIMEOUT_SECONDS": env.float("HASHCART_LOCK_TIMEOUT_SECONDS", default=30),
    "FEED_PAGE_SIZE": env.int("HASHCART_FEED_PAGE_SIZE", default=500),
    "DECIDE_BATCH_SIZE": env.int("HASHCART_DECIDE_BATCH_SIZE", default=500),
    # Leases, retries and giving up, for every outbox (core.outbox.policy(name)). Each entry:
    # ``lease_seconds`` (a claim lapses after it, if its holder died, and another worker takes
    # the row over), ``first_delay_seconds`` and ``max_delay_seconds`` (the wait after a failed
    # attempt: the first, doubled after each further failure, capped), ``max_attempts`` (failed
    # for good after that many; None: no limit) and ``give_up_after_seconds`` (failed for good
    # that long after the work was queued; None: no limit; a dict: one age per kind of work).
    "OUTBOX": {
        # The reply outbox (social): a sender's claim lasts HASHCART_REPLY_CLAIM_SECONDS; a
        # transient failure waits 2 s, doubling up to an hour; a reply fails after
        # HASHCART_REPLY_MAX_ATTEMPTS. Low-priority replies older than HASHCART_REPLY_STALE_MINUTES
        # are skipped as stale (DESIGN §5.3), and no more are queued than the budget can send
        # within that age.
        "replies": {
            "lease_seconds": env.int("HASHCART_REPLY_CLAIM_SECONDS", default=120),
            "first_delay_seconds": 2,
            "max_delay_seconds": 3600,
            "max_attempts": env.int("HASHCART_REPLY_MAX_ATTEMPTS", default=8),
            "give_up_after_seconds": env.int("HASHCART_REPLY_STALE_MINUTES", default=30) * 60,
        },
        # The payment outbox (orders, DESIGN §5.5): a worker's claim lasts two minutes; waits
        # double from 2 s up to HASHCART_PAYMENT_RETRY_MAX_DELAY_MINUTES; never given up by
        # count, but by age: an authorization after HASHCART_AUTHORIZATION_RETRY_MINUTES (the
        # buyer and the unit wait; then the gateway is asked what it recorded and the order is
        # declined), a capture or a void when the hold lapses, HASHCART_AUTHORIZATION_HOLD_HOURS
        # after the order's authorization was queued (Visa merchant-initiated holds: about 5
        # days), a refund HASHCART_REFUND_RETRY_HOURS after it was asked for (no hold bounds it:
        # the capture is done). What gives up fails loudly (ERROR, pipeline_status, /healthz)
        # for ``retry_payments``.
        "payments": {
            "lease_seconds": 120,
            "first_delay_seconds": 2,
            "max_delay_seconds": env.float("HASHCART_PAYMENT_RETRY_MAX_DELAY_MINUTES", default=30)
            * 60,
            "max_attempts": None,
            "give_up_after_seconds": {
                "authorize": env.float("HASHCART_AUTHORIZATION_RETRY_MINUTES", default=60) * 60,
                "capture": _AUTHORIZATION_HOLD_SECONDS,
                "void": _AUTHORIZATION_HOLD_SECONDS,
                "refund": env.float("HASHCART_REFUND_RETRY_HOURS", default=72) * 3600,
            },
        },
        # The e-mail outbox (orders' and accounts' e-mails): a sender's claim lasts ten minutes;
        # an SMTP failure is retried at the next sweep (no wait), up to five attempts.
        "emails": {
            "lease_seconds": 600,
            "first_delay_seconds": 0,
            "max_delay_seconds": 0,
            "max_attempts": 5,
        },
        # One poller per feed (social): its lease lasts HASHCART_POLL_LEASE_SECONDS.
        "feeds": {"lease_seconds": env.int("HASHCART_POLL_LEASE_SECONDS", default=60)},
        # One label buyer per shipment (fulfillment): its lease lasts two minutes.
        "labels": {"lease_seconds": 120},
        # Outbound webhooks (orders.services.webhooks): a sweep's claim lasts a minute (its
        # requests time out well before); a failed delivery waits
        # HASHCART_WEBHOOK_RETRY_FIRST_SECONDS, doubling up to HASHCART_WEBHOOK_RETRY_MAX_HOURS,
        # and fails for good HASHCART_WEBHOOK_RETRY_DAYS after it was queued (or sent again).
        # With the defaults: about 24 attempts over three days.
        "webhooks": {
            "lease_seconds": 60,
            "first_delay_seconds": env.float("HASHCART_WEBHOOK_RETRY_FIRST_SECONDS", default=5),
            "max_delay_seconds": env.float("HASHCART_WEBHOOK_RETRY_MAX_HOURS", default=6) * 3600,
            "max_attempts": None,
            "give_up_after_seconds": env.float("HASHCART_WEBHOOK_RETRY_DAYS", default=3) * 86400,
        },
    },
    # Outbound webhooks (orders.services.webhooks): ``SENDERS`` requests at once per sweep;
    # each waits ``CONNECT_TIMEOUT_SECONDS`` to connect and ends within ``TIMEOUT_SECONDS`` in all;
    # an endpoint whose every attempt fails for ``DISABLE_AFTER_HOURS`` is disabled (and its
    # merchant alerted); after a secret's rotation the old one still signs for
    # ``SECRET_OVERLAP_HOURS``; ``REQUIRE_HTTPS`` (production) refuses http:// and non-public
    # addresses.
    "WEBHOOKS": {
        "SENDERS": env.int("HASHCART_WEBHOOK_SENDERS", default=16),
        "CONNECT_TIMEOUT_SECONDS": 5,
        "TIMEOUT_SECONDS": env.float("HASHCART_WEBHOOK_TIMEOUT_SECONDS", default=10),
        # Fairness: one endpoint's share of a sweep (of 500), and how long a sweep starts new
        # requests (capped so that its last request ends well within the 60 s lease).
        "PER_ENDPOINT_PER_SWEEP": env.int("HASHCART_WEBHOOK_PER_ENDPOINT_PER_SWEEP", default=250),
        "SWEEP_SECONDS": env.float("HASHCART_WEBHOOK_SWEEP_SECONDS", default=20),
        "DISABLE_AFTER_HOURS": env.float("HASHCART_WEBHOOK_DISABLE_AFTER_HOURS", default=72),
        "SECRET_OVERLAP_HOURS": env.float("HASHCART_WEBHOOK_SECRET_OVERLAP_HOURS", default=24),
        "REQUIRE_HTTPS": env.bool("HASHCART_WEBHOOK_REQUIRE_HTTPS", default=False),
    },
    # Queues an e-mail in the caller's transaction: accounts hands its e-mails to the one
    # e-mail outbox (orders' ``Notification``, retried) through it, as accounts does not
    # import orders (DESIGN §2).
    "EMAIL_OUTBOX_HANDLER": "orders.services.notifications.email_queue",
    # A pending order whose confirmation request could not be posted for this long expires (its
    # unit would be held with no window open). Long enough for a flash sale's requests to drain
    # through X's 100 replies per 15 minutes.
    "CONFIRMATION_REQUEST_GIVE_UP_HOURS": env.float(
        "HASHCART_CONFIRMATION_REQUEST_GIVE_UP_HOURS", default=6
    ),
    # A confirmation request that the brand account's reply budget cannot post within this many
    # seconds of the purchase goes to the buyer privately, by e-mail with a Confirm button, and
    # its window opens when that e-mail is sent (``orders.services.private``). "off": never.
    "PUBLIC_REPLY_WAIT_SECONDS": _seconds_or_off("HASHCART_PUBLIC_REPLY_WAIT_SECONDS", 30),
    # The sandbox network reads posts once they are this old (see sandbox.adapter).
    "SANDBOX_SETTLE_MS": env.int("HASHCART_SANDBOX_SETTLE_MS", default=500),
    # The /sandbox/ page: on in development and the demo, off in production.
    "SANDBOX_PAGE": env.bool("HASHCART_SANDBOX_PAGE", default=False),
}
