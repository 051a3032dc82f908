"""Loyalty Loop settings: one module, read from the environment.

With no environment at all it runs embedded: SQLite in the project folder, Celery tasks run
eagerly in the web process, email printed to the console. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch it to PostgreSQL and Redis. Every variable is listed in the README.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from core.rates import parse_rate
from loyalty_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEV_SECRET
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # Sessions, password resets and signed URLs are only as strong as this key.
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters with at least 5 different ones "
                               "(python -c 'import secrets; print(secrets.token_urlsafe(50))').")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Absolute address of the portal, for links in emails sent by background tasks.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
PROGRAM_NAME = env_str("PROGRAM_NAME", "Loyalty Loop")

INSTALLED_APPS = [
    "loyalty_site.admin_site.LoyaltyAdminConfig",  # Django's admin, with the owner's dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "allauth",
    "allauth.account",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "accounts",
    "rewards",
    "community",
    "feedback",
    "insights",
    "webhooks",
    "messaging",
    "campaigns",
    "storefront",
    "recommendations",
    "anymail",
    "corsheaders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Cross-origin calls from shops' pages, to the widget API only (storefront.selectors.cors_allows).
    "corsheaders.middleware.CorsMiddleware",
    "core.middleware.request_guard",
    "accounts.ratelimit.rate_limit_headers",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # core.middleware's Authentication, Message and CSP middleware: Django's and django-csp's, for
    # pages only (the partner API passes them over).
    "core.middleware.AuthenticationMiddleware",
    "core.middleware.LocaleMiddleware",  # after the session: a member's language is kept in it
    "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "rewards.middleware.program_timezone",
]

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"
ASGI_APPLICATION = "loyalty_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "loyalty_site.context_processors.program",
            ],
            # Every template may translate ({% translate %}) and unlocalize without loading them.
            "builtins": ["core.templatetags", "django.templatetags.i18n", "django.templatetags.l10n"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock at BEGIN, so two writers queue instead of
    # failing half-way with "database is locked"; WAL lets readers run beside one writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
if IS_POSTGRES:
    # Parameters travel apart from the SQL, and psycopg prepares a statement it has run five times
    # on a connection, so PostgreSQL stops planning the hot paths on every call. Behind a pooler in
    # transaction mode (pgbouncer), set DATABASE_PREPARE_THRESHOLD=0 to turn preparing off.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["server_side_binding"] = env_bool("DATABASE_SERVER_SIDE_BINDING", True)
    _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
    _options["prepare_threshold"] = _prepare or None
# A streaming replica of the primary, for the reads that say they may come from one (core/replica.py:
# the insights pages, the leaderboards' rankings, the reviews shown on shops' pages). Tests read
# the primary through the same name.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    if not IS_POSTGRES:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL on PostgreSQL.")
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"], conn_health_checks=True)
    DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"]["OPTIONS"])
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (login rate limits, API rate limits and the versions of what each process keeps in
# memory need one shared by every process: core/process_cache.py) ------------------------------
CACHE_URL = env_str("CACHE_URL", "locmem://")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "core.cache.SharedClientRedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "core.cache.CountingLocMemCache"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://host:port/db or locmem://.")

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "feedback.forms.ReferralSignupForm"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"  # subjects under the program's name (staff may change it)
# Failed logins: 10 a minute per address, 5 per 5 minutes per account.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("LOGIN_FAILED_RATE_LIMIT", "10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}

# --- Email and SMS ----------------------------------------------------------------------------
# Every message goes through the outbox (messaging): Django's mail API included, so allauth's
# mails are queued like the rest and sent after commit. What delivers them: EMAIL_DELIVERY_BACKEND
# when set (for example anymail.backends.postmark.EmailBackend, with its settings in ANYMAIL_*),
# else SMTP when EMAIL_HOST is set, files in EMAIL_FILE_PATH when that is set (staging), the
# console otherwise.
EMAIL_BACKEND = "messaging.backends.OutboxEmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH")
if env_str("EMAIL_DELIVERY_BACKEND"):
    EMAIL_DELIVERY_BACKEND = env_str("EMAIL_DELIVERY_BACKEND")
elif EMAIL_HOST:
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
elif EMAIL_FILE_PATH:
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
else:
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.console.EmailBackend"
# django-anymail's settings, from the environment: ANYMAIL_POSTMARK_SERVER_TOKEN=... becomes
# ANYMAIL["POSTMARK_SERVER_TOKEN"] (see https://anymail.dev for each provider's names).
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}
SMS_BACKEND = env_str("SMS_BACKEND", "messaging.sms.ConsoleBackend")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM = env_str("TWILIO_FROM")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{PROGRAM_NAME} <no-reply@loyaltyloop.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------------------------
# Redis (redis://host:6379/0) or RabbitMQ (amqp://user:pass@host:5672/vhost); CI runs the suite on
# the one and the tests with real workers on the other. On RabbitMQ a task a dead worker held goes
# back to the queue as its connection closes.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
# Without a broker, tasks run in the calling process: the embedded default needs no Redis.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
# Redis hands a task a worker took but never acknowledged (the worker was killed) to another
# worker after this many seconds. Longer than our longest task (the nightly insights snapshot
# takes about 25 s at a million orders), or a slow task would be handed on while it still runs.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=5)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # Look for abandoned tasks every 10 s (kombu's default looks every 100 s).
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# django-celery-beat's database scheduler behind a lock: start a beat on several machines and one
# sends the jobs while the others wait to take over (loyalty_site/beat.py). Each job's last run is
# written as soon as it is sent, so the beat that takes over knows it.
CELERY_BEAT_SCHEDULER = "loyalty_site.beat:LockedDatabaseScheduler"
CELERY_BEAT_SYNC_EVERY = 1
CELERY_BEAT_SCHEDULE: dict = {
    "release-pending-points": {"task": "rewards.release_pending_points", "schedule": 15 * 60},
    "expire-points": {"task": "rewards.expire_points", "schedule": 60 * 60},
    "award-birthdays": {"task": "rewards.award_birthdays", "schedule": 60 * 60},
    "purge-idempotency-keys": {"task": "accounts.purge_idempotency_keys", "schedule": 24 * 60 * 60},
    "nightly-progress": {"task": "rewards.nightly_progress", "schedule": crontab(hour=3, minute=15)},
    "review-requests": {"task": "community.send_review_requests", "schedule": crontab(minute=40)},
    "settle-referrals": {"task": "feedback.settle_referrals", "schedule": 15 * 60},
    "survey-invitations": {"task": "feedback.send_survey_invitations", "schedule": crontab(minute=20)},
    "insights-snapshot": {"task": "insights.nightly_snapshot", "schedule": crontab(hour=2, minute=30)},
    "recommendations": {"task": "recommendations.nightly", "schedule": crontab(hour=2, minute=50)},
    "relay-outbox": {"task": "core.relay_outbox", "schedule": 60},
    "purge-outbox": {"task": "core.purge_outbox", "schedule": crontab(hour=4, minute=10)},
    "deliver-webhooks": {"task": "webhooks.deliver_due", "schedule": 15},
    "send-messages": {"task": "messaging.send_due", "schedule": 60},
    "expiry-reminders": {"task": "messaging.expiry_reminders", "schedule": crontab(hour=9, minute=5)},
    "rewards-unlocked": {"task": "messaging.rewards_unlocked", "schedule": crontab(minute=50)},
    "lifecycle-messages": {"task": "messaging.lifecycle", "schedule": crontab(minute=55)},
    "campaigns": {"task": "campaigns.run_due", "schedule": crontab(minute=25)},
}
CELERY_IMPORTS = ["core.tasks"]

# Queues by kind of work, each read by a worker pool of its own (`make worker QUEUES=ledger`,
# docs/deploy.md): a slow partner endpoint (webhooks), a campaign of 100,000 mails (messages) or a
# nightly pass over every member (analytics) never delays points becoming available (ledger).
# Each queue's name comes from its variable; tests give every run names of its own.
TASK_QUEUE_VARIABLES = {"default": "CELERY_QUEUE", "ledger": "LEDGER_QUEUE", "messages": "MESSAGES_QUEUE",
                        "webhooks": "WEBHOOKS_QUEUE", "analytics": "ANALYTICS_QUEUE"}
TASK_QUEUES = {kind: env_str(variable, kind) for kind, variable in TASK_QUEUE_VARIABLES.items()}
# Every task's kind (a test checks that each task and each scheduled job has one); a task not
# listed goes to the default queue.
TASK_KINDS = {
    # Points moving for members, minutes matter: pending becoming available, expiry, birthdays,
    # tiers and badges after an activity, referral rewards.
    "rewards.release_pending_points": "ledger",
    "rewards.expire_points": "ledger",
    "rewards.award_birthdays": "ledger",
    "rewards.evaluate_progress": "ledger",
    "feedback.check_referrals": "ledger",
    "feedback.settle_referrals": "ledger",
    # Everything that writes to members: the outbox of messages and what fills it.
    "messaging.send": "messages",
    "messaging.send_due": "messages",
    "messaging.expiry_reminders": "messages",
    "messaging.rewards_unlocked": "messages",
    "messaging.lifecycle": "messages",
    "community.send_review_requests": "messages",
    "feedback.send_survey_invitations": "messages",
    "campaigns.run_due": "messages",
    # Partners' endpoints: handing the outbox's events on, and the deliveries.
    "core.relay_outbox": "webhooks",
    "webhooks.deliver": "webhooks",
    "webhooks.deliver_due": "webhooks",
    # Long passes over every member or order.
    "insights.nightly_snapshot": "analytics",
    "insights.compute_snapshot": "analytics",
    "rewards.nightly_progress": "analytics",
    "rewards.backfill_badge": "analytics",
    "recommendations.nightly": "analytics",
    # Housekeeping.
    "accounts.purge_idempotency_keys": "default",
    "core.purge_outbox": "default",
}
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUES["default"]
CELERY_TASK_ROUTES = {task: {"queue": TASK_QUEUES[kind]} for task, kind in TASK_KINDS.items()}
# A worker that takes a message holds it this long; if it dies, the message is sent again after.
MESSAGE_LEASE_SECONDS = env_int("MESSAGE_LEASE_SECONDS", 120, minimum=1)

# --- Webhooks ------------------------------------------------------------------------------------
# Seconds before each retry of a failed delivery (then it is given up), with +-10% jitter.
WEBHOOK_RETRY_DELAYS = [int(s) for s in env_list("WEBHOOK_RETRY_DELAYS", ["5", "300", "1800", "7200", "18000",
                                                                          "36000", "36000"])]
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1)
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5, minimum=1)
WEBHOOK_ENDPOINT_CONCURRENCY = env_int("WEBHOOK_ENDPOINT_CONCURRENCY", 4, minimum=1)
# A worker that takes a delivery holds it this long; if it dies, the delivery is tried again after.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60, minimum=1)
# http:// and private, loopback and link-local addresses: only for development and tests.
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
# 0: deliveries are recorded but nothing is sent (make fuzz: its endpoints are made-up hosts).
WEBHOOKS_SEND = env_bool("WEBHOOKS_SEND", True)
# Fernet key (32 url-safe base64 bytes) that encrypts the secrets we keep (webhook endpoints', storefront
# embeds'); derived from SECRET_KEY if empty. WEBHOOK_SECRETS_KEY is its earlier name, still read.
SECRETS_ENCRYPTION_KEY = env_str("SECRETS_ENCRYPTION_KEY") or env_str("WEBHOOK_SECRETS_KEY")
if SECRETS_ENCRYPTION_KEY:
    try:
        Fernet(SECRETS_ENCRYPTION_KEY)
    except ValueError:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEY must be a Fernet key: 32 url-safe base64-encoded bytes "
                                   "(Fernet.generate_key()).") from None

# Who the outbox's events are handed to, in order (dotted paths of ``fn(event_ids=[ids])``).
OUTBOX_CONSUMERS: list[str] = ["webhooks.services.deliveries_create"]
# Events a consumer still needs past the retention (dotted paths of ``fn() -> queryset of event ids``).
OUTBOX_KEEP: list[str] = ["webhooks.selectors.outbox_events_needed"]
# Queue a relay after each commit that wrote events (beat also relays every minute).
OUTBOX_RELAY_ON_COMMIT = True
# Days an event stays in the outbox after it was relayed: how far back a replay can reach.
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 30, minimum=1)

# A request body (not counting uploaded files) may be this large; the API answers 413 above it.
# 1,000 orders of a few lines each take about 1 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)

# The storefront widgets: CORS answers only /embed/v1/, and only origins a store registered
# (PUT /api/v1/embed/); no cookies ever cross.
CORS_URLS_REGEX = r"^/embed/v1/.*$"
# Proxies in front of the web servers that add the client's address to X-Forwarded-For (a load
# balancer, HAProxy): the address rate limits and fraud checks count is the one they saw.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "idempotency-key", "x-store"]
CORS_EXPOSE_HEADERS = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"]
CORS_PREFLIGHT_MAX_AGE = 600
try:
    # Per store and shopper's address: every shopper's browser calls the widget API itself.
    EMBED_RATE_LIMIT = parse_rate(env_str("EMBED_RATE_LIMIT", "300/min"))
except ValueError as exc:
    raise ImproperlyConfigured(f"EMBED_RATE_LIMIT: {exc}") from None

# Calls each API key may make, unless the key has its own limit: N/sec, N/min, N/hour or N/day.
# Counted in the cache: with several web processes, CACHE_URL must point at one shared Redis.
try:
    API_RATE_LIMIT = parse_rate(env_str("API_RATE_LIMIT", "6000/min"))
except ValueError as exc:
    raise ImproperlyConfigured(f"API_RATE_LIMIT: {exc}") from None

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.Negotiation",
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.ratelimit.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty Loop partner API",
    "DESCRIPTION": (
        "The partner API of Loyalty Loop. Authenticate with `Authorization: Api-Key <key>`. "
        "Errors are JSON: `{\"error\": {\"code\", \"message\", \"fields\"}}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.schema.path_parameters_hook",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "accounts.models.Channel",
        "ResultStatusEnum": ["accepted", "duplicate", "rejected"],
        "WriteStatusEnum": ["accepted", "duplicate"],
        "CouponStatusEnum": ["active", "used", "expired"],
    },
}

# --- Static and media ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
# Serve uploads from Django itself; behind a real web server or object storage, turn it off.
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
# Members' uploads (review photos, avatars): never served by a web server, only through the view
# that checks who may see them (see core/storage.py).
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(BASE_DIR / "private-media")))
# Object storage (S3 or any S3-compatible store) for every upload, when a bucket is named: public
# media under public/ (the bucket's policy must let anyone read that prefix), members' uploads
# under private/, reached only through signed URLs that last S3_SIGNED_URL_SECONDS.
S3_BUCKET = env_str("S3_BUCKET")
_S3 = {
    "bucket_name": S3_BUCKET,
    "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
    "region_name": env_str("S3_REGION") or None,
    "access_key": env_str("S3_ACCESS_KEY_ID") or None,
    "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
    "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
    "file_overwrite": False,
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"} if not S3_BUCKET else {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_S3, "location": "public", "querystring_auth": False,
                    "custom_domain": env_str("S3_CUSTOM_DOMAIN") or None},
    },
    "private": {"BACKEND": "core.storage.PrivateStorage"} if not S3_BUCKET else {
        "BACKEND": "core.storage.PrivateS3Storage",
        "OPTIONS": {**_S3, "location": "private", "querystring_auth": True, "default_acl": "private",
                    "querystring_expire": env_int("S3_SIGNED_URL_SECONDS", 300, minimum=10)},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Internationalisation -------------------------------------------------------------------------
# The portal, the messages and the admin's own pages speak English and German (locale/de). A
# visitor's language comes from the switcher (a cookie), else their browser; a member's is stored
# on the member and used for everything we send them. The partner API always answers in English.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]  # each in its own language: the switcher shows them so
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Dates and numbers in each language's way (loyalty_site/formats/<language>/formats.py). Grouping is
# asked for where a number is shown (the points filter), never switched on everywhere: ids, years,
# form values and data attributes must stay machine-readable.
FORMAT_MODULE_PATH = ["loyalty_site.formats"]
USE_THOUSAND_SEPARATOR = False
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) --------------------------------------------------------------------------
# Content-Security-Policy on every page: scripts only from our own files (no inline script, no
# eval), no plugins, no framing, forms post only here. Styles may be inline (style attributes in
# templates and the admin's theme); they cannot run code.
# Pictures may also come from the bucket (public media, and private ones by signed redirect).
_MEDIA_ORIGINS = []
if S3_BUCKET:
    _custom = env_str("S3_CUSTOM_DOMAIN")
    _endpoint = env_str("S3_ENDPOINT_URL")
    _MEDIA_ORIGINS = [f"https://{_custom}"] if _custom else []
    _MEDIA_ORIGINS.append("/".join(_endpoint.split("/")[:3]) if _endpoint else "https://*.amazonaws.com")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", *_MEDIA_ORIGINS],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz is probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django sets its own logger's level (INFO); without this, LOG_LEVEL=ERROR still printed every
    # 429 and 404 as a warning.
    "loggers": {"django": {"level": LOG_LEVEL}, "django.db.backends": {"level": "WARNING"}},
}
