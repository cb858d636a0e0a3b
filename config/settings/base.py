"""Settings shared by every environment. Each integration switches on an environment variable and falls back to an
embedded default that needs no server: see `.env.example` and docs/configuration.md."""

from pathlib import Path

from django.urls import reverse_lazy

from config.env import BASE_DIR, VAR_DIR, env
from config.storage import default_storage_from_env
from core.embedded.postgres import EmbeddedPostgres
from core.logging import logging_settings
from core.prometheus import multiprocess_dir_prepare

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("TOOLPORT_SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djstripe",
    "django_celery_beat",
    "django_celery_results",
    "core",
    "accounts",
    "billing",
    "monitoring",
    "tools",
    "rag",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole chain
    "core.request_id.RequestIdMiddleware",  # every log line of the request carries its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "core.timezones.TimezoneMiddleware",  # times shown in the viewer's zone (the browser's `tz` cookie)
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the view and the final status
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
# The ASGI server of `make run` and the test servers: "uvicorn" (uvloop + httptools, the faster) or "daphne".
ASGI_SERVER = env.str("ASGI_SERVER", default="uvicorn")
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.console",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL + pgvector server under var/postgres -------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    _embedded = EmbeddedPostgres().connection
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _embedded.name,
            "USER": _embedded.user,
            "HOST": _embedded.host,
            "PORT": "",
        }
    }
# Persistent connections: the MCP endpoint runs its ORM work in long-lived threads, and a new connection per call
# would cost more than the call. Health checks drop a connection the server closed.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer and Celery broker when REDIS_URL is set, else in-process defaults ------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"pool_class": "core.cache.SharedConnectionPool"},  # one pool per process, not per request
        }
    }
    # A socket read timeout above channels-redis's 5 s blocking pop, which redis-py's default (5 s) races with: an idle
    # stream's receive then failed every few seconds.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "toolport"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery: Redis broker when set, else kombu's filesystem transport under var/celery (no server needed) ---------
CELERY_FILESYSTEM_BROKER_DIR: Path = VAR_DIR / "celery" / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or (
    REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL else "filesystem://localhost/"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis", "sentinel")):
    # Redis keeps a delivered, unacknowledged message aside for this long, then gives it to another worker: that is
    # how the task of a worker killed mid-way (acks_late) is redelivered. It must exceed the longest task
    # (CELERY_TASK_TIME_LIMIT) and the longest retry countdown, or a task still running would be delivered again.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True  # a killed worker loses no task: it is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat reads this into django-celery-beat's tables at start-up; staff can change intervals in the admin.
CELERY_BEAT_SCHEDULE = {
    "billing-usage-flush": {"task": "billing.usage_flush", "schedule": 5.0},
    "tools-upstream-refresh": {"task": "tools.upstream_refresh", "schedule": 60.0},
    "rag-embeddings-reembed": {"task": "rag.embeddings_reembed", "schedule": 60.0},
    "rag-orphaned-files-delete": {"task": "rag.orphaned_files_delete", "schedule": 3600.0},
    "monitoring-usage-rollup": {"task": "monitoring.usage_rollup", "schedule": 60.0},
    "monitoring-usage-events-prune": {"task": "monitoring.usage_events_prune", "schedule": 86400.0},
}

# --- Files: local disk under var/media by default; S3 or any S3-compatible server with TOOLPORT_STORAGE=s3 ----------
MEDIA_ROOT = env.path("TOOLPORT_MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": default_storage_from_env(),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Identity (django-allauth: email login, mandatory verification, TOTP + recovery codes) -----------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "console:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Toolport] "
ACCOUNT_SESSION_REMEMBER = None  # ask ("Remember me")
# allauth's rate limits are on by default and count in the cache (shared Redis when REDIS_URL is set).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Toolport"

# API keys: the HMAC pepper (a server-side secret; changing it invalidates every key). How many keys a workspace
# may hold is its plan's business (billing).
API_KEY_PEPPER = env.str("API_KEY_PEPPER", default="")
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)

# Quotas: Redis key prefix of the counters and the admitted-usage stream (when REDIS_URL is set).
QUOTA_REDIS_PREFIX = env.str("QUOTA_REDIS_PREFIX", default="toolport:quota")

# --- Payments: Stripe through dj-stripe (test mode unless STRIPE_LIVE_MODE) ---------------------------------------
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_TEST_SECRET_KEY = env.str("STRIPE_TEST_SECRET_KEY", default="")
STRIPE_LIVE_SECRET_KEY = env.str("STRIPE_LIVE_SECRET_KEY", default="")
STRIPE_TEST_PUBLIC_KEY = env.str("STRIPE_TEST_PUBLIC_KEY", default="")
STRIPE_LIVE_PUBLIC_KEY = env.str("STRIPE_LIVE_PUBLIC_KEY", default="")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# A past-due subscription keeps its plan this long before the workspace drops to Free.
BILLING_PAST_DUE_GRACE_DAYS = env.int("BILLING_PAST_DUE_GRACE_DAYS", default=7)

# --- Secrets at rest (core.crypto): Fernet keys, newest first; local and test settings derive one from SECRET_KEY ---
SECRETS_ENCRYPTION_KEYS: list[str] = env.list("SECRETS_ENCRYPTION_KEYS", default=[])

# --- Outbound HTTP (core.outbound): trusted internal hosts the SSRF guard lets through, "host" or "host:port" --------
OUTBOUND_ALLOWED_HOSTS: list[str] = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])

# --- MCP endpoint (tools.mcp_server) ---------------------------------------------------------------------------------
MCP_MAX_BODY_BYTES = env.int("MCP_MAX_BODY_BYTES", default=1024 * 1024)
MCP_SESSION_IDLE_SECONDS = env.int("MCP_SESSION_IDLE_SECONDS", default=30 * 60)
MCP_KEEPALIVE_SECONDS = env.float("MCP_KEEPALIVE_SECONDS", default=30.0)
MCP_REQUEST_MAX_SECONDS = env.int("MCP_REQUEST_MAX_SECONDS", default=60 * 60)
MCP_PAGE_SIZE = env.int("MCP_PAGE_SIZE", default=100)
MCP_REDIS_PREFIX = env.str("MCP_REDIS_PREFIX", default="toolport:mcp")
# Callers (a key, its plan, the tools it may see) are kept in each process's memory for at most this long; changes
# apply at once regardless, through the access epoch every message's admission compares (core.epoch).
MCP_CACHE_SECONDS = env.int("MCP_CACHE_SECONDS", default=30)
# Browser origins allowed to call /mcp besides the server's own (e.g. "https://inspector.example.com").
MCP_ALLOWED_ORIGINS: list[str] = env.list("MCP_ALLOWED_ORIGINS", default=[])
# Conformance test mode only: requests without a credential are served with this fixture workspace's key (an ASGI
# wrapper in config/asgi.py adds it, outside the endpoint's authentication). Never set in production.
MCP_CONFORMANCE_WORKSPACE = ""

# --- Upstream MCP servers (tools.upstream) ---------------------------------------------------------------------------
# The circuit breaker opens after this many consecutive failures and lets one trial call through after the reset time.
UPSTREAM_CIRCUIT_FAILURES = env.int("UPSTREAM_CIRCUIT_FAILURES", default=5)
UPSTREAM_CIRCUIT_RESET_SECONDS = env.int("UPSTREAM_CIRCUIT_RESET_SECONDS", default=30)
UPSTREAM_CONNECT_TIMEOUT_SECONDS = env.float("UPSTREAM_CONNECT_TIMEOUT_SECONDS", default=10.0)
# Beat refreshes every enabled server's tools, prompts and resources this often.
UPSTREAM_REFRESH_SECONDS = env.int("UPSTREAM_REFRESH_SECONDS", default=300)

# --- REST API (DRF + drf-spectacular) -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Key authentication first: an unauthenticated call then gets 401 with `WWW-Authenticate: Bearer`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsSignedInOrKey"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Toolport API",
    "DESCRIPTION": "Workspaces, members, invitations and API keys. Authenticate with a session (the console) or "
    "an API key: `Authorization: Bearer tp_live_…` or `X-API-Key: tp_live_…`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Toolport <noreply@toolport.localhost>")

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Staff admin (django-unfold) -----------------------------------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "Toolport admin",
    "SITE_HEADER": "Toolport",
    "SITE_SYMBOL": "hub",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": True,
    "SITE_DROPDOWN": [
        {"icon": "monitoring", "title": "Operations overview", "link": reverse_lazy("admin:monitoring_overview")},
        {"icon": "history", "title": "Audit log", "link": reverse_lazy("admin:monitoring_auditevent_changelist")},
    ],
}

# --- Logging: structlog renders every record, ours and the libraries' --------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="console")  # "console" for people, "json" for log shippers
LOGGING = logging_settings(level=LOG_LEVEL, renderer=LOG_FORMAT)

# --- Metrics (monitoring.metrics): /metrics and /stats answer a `Bearer METRICS_TOKEN`; empty turns them off (404) ---
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Every process (web, Celery workers) writes its samples to files here and /metrics sums them (prometheus_client's
# multiprocess mode, chosen when it is first imported: so the folder is set up here, before any app loads).
PROMETHEUS_MULTIPROC_DIR = multiprocess_dir_prepare(
    Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus")))
)

# --- RAG --------------------------------------------------------------------------------------------------------------
# The embedding provider (rag.embedding): "minilm", the offline all-MiniLM-L6-v2 int8 ONNX model from PyPI, or
# "openai", an OpenAI-compatible API at EMBEDDING_API_URL (its base URL) serving EMBEDDING_MODEL at 384 dimensions.
# A change of model re-embeds every chunk in the background, then switches over (docs/rag.md).
EMBEDDING_PROVIDER = env.str("EMBEDDING_PROVIDER", default="minilm")
EMBEDDING_API_URL = env.str("EMBEDDING_API_URL", default="")
EMBEDDING_API_KEY = env.str("EMBEDDING_API_KEY", default="")
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="text-embedding-3-small")
EMBEDDING_API_TIMEOUT_SECONDS = env.float("EMBEDDING_API_TIMEOUT_SECONDS", default=30.0)
EMBEDDING_API_BATCH_SIZE = env.int("EMBEDDING_API_BATCH_SIZE", default=128)
# Beat removes stored document files no document references once they are this old (an upload stores its file a
# moment before its row commits; those files must not be touched).
RAG_ORPHANED_FILE_GRACE_SECONDS = env.int("RAG_ORPHANED_FILE_GRACE_SECONDS", default=3600)
# Staff's global knowledge bases take files up to this size (workspaces: their plan's upload size).
RAG_GLOBAL_MAX_UPLOAD_BYTES = env.int("RAG_GLOBAL_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
# Upload by URL: how long the fetch may take (it runs while the user waits, through the SSRF guard).
RAG_FETCH_TIMEOUT_SECONDS = env.float("RAG_FETCH_TIMEOUT_SECONDS", default=20.0)

# --- Usage ledger (monitoring.usage): every tool call as an event, written in batches off the hot path ------------
USAGE_EVENTS_FLUSH_SECONDS = env.float("USAGE_EVENTS_FLUSH_SECONDS", default=1.0)  # how often a process writes
USAGE_EVENTS_BATCH = env.int("USAGE_EVENTS_BATCH", default=500)  # or sooner, when this many calls wait
USAGE_EVENTS_BUFFER_MAX = env.int("USAGE_EVENTS_BUFFER_MAX", default=100_000)  # kept while the database is away
USAGE_EVENT_RETENTION_DAYS = env.int("USAGE_EVENT_RETENTION_DAYS", default=90)  # raw events; rollups are kept
