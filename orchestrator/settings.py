"""Harrier's Django settings.

Twelve-factor: every setting comes from an environment variable with a local default, so that
`python manage.py server local` needs nothing but this checkout, and a deployment sets
`DATABASE_URL`, `CELERY_BROKER_URL` and `HARRIER_STORAGE`.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Where `server local` keeps its SQLite database, storage and generated credentials.
HARRIER_HOME = Path(os.environ.get("HARRIER_HOME", BASE_DIR / ".harrier")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


DEBUG = env_bool("HARRIER_DEBUG", False)
# A fixed development key is acceptable only when no DATABASE_URL is configured, i.e. a local
# SQLite sandbox; any deployment must provide its own.
SECRET_KEY = os.environ.get("HARRIER_SECRET_KEY") or (
    "harrier-local-development-key-not-for-production"
)
# Encrypts SECRET inputs at rest (orchestrator/encryption.py); SECRET_KEY when unset. Every
# webserver, executor and worker must share it.
HARRIER_ENCRYPTION_KEY = os.environ.get("HARRIER_ENCRYPTION_KEY", "")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("HARRIER_ALLOWED_HOSTS", "*").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "corsheaders",
    "drf_spectacular",
    "django_celery_beat",
    "orchestrator",
    "executor",
    "scheduler",
    "webui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that may answer (WhiteNoise, CommonMiddleware): preflights are answered here.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
WSGI_APPLICATION = "orchestrator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=int(os.environ.get("HARRIER_DB_CONN_MAX_AGE", "60"))
        )
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # How durable each commit is (PostgreSQL's synchronous_commit). `on`, the default, waits for
    # the WAL on disk; `off` answers before, which roughly halves the executor's cost per task,
    # at the price of the last fraction of a second of commits if the PostgreSQL server itself
    # crashes (never when a Harrier process dies). docs/architecture.md weighs it.
    HARRIER_SYNCHRONOUS_COMMIT = os.environ.get("HARRIER_SYNCHRONOUS_COMMIT", "on")
    if HARRIER_SYNCHRONOUS_COMMIT not in {"on", "off", "local", "remote_write", "remote_apply"}:
        raise ImproperlyConfigured(
            f"HARRIER_SYNCHRONOUS_COMMIT={HARRIER_SYNCHRONOUS_COMMIT!r}: use on, off, local, remote_write or remote_apply"
        )
    if HARRIER_SYNCHRONOUS_COMMIT != "on":
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c synchronous_commit={HARRIER_SYNCHRONOUS_COMMIT}"
else:
    HARRIER_HOME.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(HARRIER_HOME / "harrier.sqlite3"),
            # IMMEDIATE takes the write lock at BEGIN, so two threads never deadlock upgrading a
            # read lock; WAL lets the web server read while the executor writes.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("HARRIER_STATIC_ROOT", BASE_DIR / "static-collected"))
# Static files are served by the application itself (the admin's and the UI's), straight from
# the apps when `collectstatic` has not been run, so `server local` needs no web server.
WHITENOISE_USE_FINDERS = True

# Bodies larger than this are refused before they are parsed (flows, inputs).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("HARRIER_MAX_BODY_BYTES", str(10 * 1024 * 1024)))

# The REST API (orchestrator/api/, docs/api.md). Basic first: an anonymous request is answered
# 401 with `WWW-Authenticate: Basic`, as Kestra's basic auth does; tokens are sent as
# `Authorization: Bearer <key>` (or DRF's `Token <key>`); the UI's session needs the CSRF token
# on writes.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "orchestrator.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "orchestrator.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Harrier API",
    "DESCRIPTION": "Kestra's /api/v1 on Harrier: flows, executions and logs (docs/api.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The document and its pages need a login too (a session, for the pages in a browser).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StateEnum": "orchestrator.api.serializers.STATES",
        "EndStateEnum": "orchestrator.api.serializers.END_STATES",
        "LogLevelEnum": "orchestrator.api.serializers.LOG_LEVELS",
        "KVTypeEnum": "orchestrator.kv.KVType",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "orchestrator.api.openapi.document_refused_media_types",
    ],
}
# Cross-origin requests (django-cors-headers, docs/api.md): closed unless
# HARRIER_CORS_ALLOWED_ORIGINS names the origins (`https://ui.example.com,https://ops.example.com`)
# whose pages may call the API from a browser. Only /api/ answers them; credentials (cookies)
# are not shared across origins: such pages authenticate with a token.
CORS_ALLOWED_ORIGINS = [o.strip() for o in os.environ.get("HARRIER_CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
CORS_URLS_REGEX = r"^/api/.*$"
# Kestra's KV API reads `ttl` and `description` headers.
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with",
                      "ttl", "description")
CORS_EXPOSE_HEADERS = ["Content-Disposition"]
# The longest an execution created with `wait=true` is waited for, in seconds; after it the
# execution is returned as it stands.
HARRIER_API_WAIT_SECONDS = env_float("HARRIER_API_WAIT_SECONDS", 60.0)
# The largest request creating an execution (its FILE inputs included), in bytes.
HARRIER_MAX_UPLOAD_BYTES = int(os.environ.get("HARRIER_MAX_UPLOAD_BYTES", str(1024 * 1024 * 1024)))
# Following executions and logs over server-sent events (docs/api.md): how often one thread per
# process looks for changes of every followed execution when no change notice (orchestrator/
# notify.py) came, how long a quiet stream waits before a
# keep-alive comment, the longest a stream lives, how long a log stream waits for late lines
# once its execution ended, and how many streams one process serves (keep it below its threads).
HARRIER_FOLLOW_POLL_SECONDS = env_float("HARRIER_FOLLOW_POLL_SECONDS", 2.0)
HARRIER_FOLLOW_KEEPALIVE_SECONDS = env_float("HARRIER_FOLLOW_KEEPALIVE_SECONDS", 15.0)
HARRIER_FOLLOW_MAX_SECONDS = env_float("HARRIER_FOLLOW_MAX_SECONDS", 3600.0)
HARRIER_FOLLOW_LOG_GRACE_SECONDS = env_float("HARRIER_FOLLOW_LOG_GRACE_SECONDS", 2.0)
HARRIER_FOLLOW_MAX_STREAMS = int(os.environ.get("HARRIER_FOLLOW_MAX_STREAMS", "4"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HARRIER_LOG_LEVEL", "WARNING")},
    "loggers": {"harrier": {"level": os.environ.get("HARRIER_LOG_LEVEL", "INFO"), "propagate": True}},
}

# --- Celery (the queue) -------------------------------------------------------------------
# Celery is transport only: PostgreSQL is the source of truth, so there is no result backend and
# every consumer is idempotent. Messages are JSON, never pickles.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Worker liveness (docs/workers.md): a message is acknowledged after its task ran, and put back
# when the process running it dies, so a dying consumer loses nothing; a copy that then runs
# twice is dropped by the claim on (task run, attempt). One message reserved per process: a long
# job never holds shorter ones hostage behind it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("HARRIER_PREFETCH", "1"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message taken by a consumer that dies comes back after this long; the reconciler
    # recovers executions much sooner, so this only bounds the worst case. A job that runs
    # longer than this is delivered a second time while it runs: the claim drops that copy, so
    # task timeouts need not fit under it (docs/workers.md).
    "visibility_timeout": int(os.environ.get("HARRIER_VISIBILITY_TIMEOUT", "3600")),
}
# django-celery-beat's DatabaseScheduler, seeing changes made while beat starts (scheduler/beat.py).
CELERY_BEAT_SCHEDULER = "scheduler.beat:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Harrier --------------------------------------------------------------------------------
# "celery" sends messages through CELERY_BROKER_URL; "local" keeps them in this process
# (server local, flow run).
HARRIER_BUS = os.environ.get("HARRIER_BUS", "celery")
# --- Internal storage (orchestrator/storage/, docs/storage.md) ---------------------------------
# "local": a directory; "s3": a bucket of MinIO, S3 or any compatible server. The URL forms
# `local:///path` and `s3://bucket` are read too.
HARRIER_STORAGE = os.environ.get("HARRIER_STORAGE", "local")
HARRIER_STORAGE_PATH = os.environ.get("HARRIER_STORAGE_PATH") or str(HARRIER_HOME / "storage")
HARRIER_S3_ENDPOINT = os.environ.get("HARRIER_S3_ENDPOINT", "")
HARRIER_S3_BUCKET = os.environ.get("HARRIER_S3_BUCKET", "")
HARRIER_S3_ACCESS_KEY = os.environ.get("HARRIER_S3_ACCESS_KEY", "")
HARRIER_S3_SECRET_KEY = os.environ.get("HARRIER_S3_SECRET_KEY", "")
HARRIER_S3_REGION = os.environ.get("HARRIER_S3_REGION", "")
HARRIER_S3_SECURE = env_bool("HARRIER_S3_SECURE", True)
# --- HTTP tasks (workers/http_guard.py, docs/tasks.md) ------------------------------------------
# Refuse connections to private, loopback, link-local and other non-public addresses (SSRF guard);
# off by default for local use, to be turned on wherever flow authors are not the operators.
HARRIER_HTTP_DENY_PRIVATE = env_bool("HARRIER_HTTP_DENY_PRIVATE", False)
# Networks reachable even so: comma-separated addresses or CIDRs (an internal API flows may call).
HARRIER_HTTP_ALLOW_NETWORKS = os.environ.get("HARRIER_HTTP_ALLOW_NETWORKS", "")
# Environment variables with this prefix are visible to expressions as `envs.<name>`.
HARRIER_ENVS_PREFIX = os.environ.get("HARRIER_ENVS_PREFIX", "ENV_")
# The reconciler re-sends work for executions idle longer than this (seconds).
HARRIER_RECONCILE_AFTER = env_float("HARRIER_RECONCILE_AFTER", 5.0)
HARRIER_RECONCILE_INTERVAL = env_float("HARRIER_RECONCILE_INTERVAL", 2.0)
# The most jobs one executor step sends; a wide loop's others go in the steps that follow.
HARRIER_DISPATCH_BATCH = int(os.environ.get("HARRIER_DISPATCH_BATCH", "500"))
# Decide every step about one task run inside a loop a second time over all the execution's task
# runs, and fail it when the two decisions differ: a check for the tests, which doubles the cost.
HARRIER_CHECK_FOCUSED_STEPS = os.environ.get("HARRIER_CHECK_FOCUSED_STEPS", "") in {"1", "true", "yes"}
# Worker liveness (workers/liveness.py, docs/workers.md): every worker process refreshes a
# heartbeat in Redis this often (seconds), which expires after the TTL; the reconciler sends the
# attempts of a worker silent that long again, as new attempts.
HARRIER_HEARTBEAT_INTERVAL = env_float("HARRIER_HEARTBEAT_INTERVAL", 3.0)
HARRIER_HEARTBEAT_TTL = env_float("HARRIER_HEARTBEAT_TTL", 10.0)
# A task run's attempts lost with their worker are sent again without counting against its
# `retry`, this many times; after that a loss counts as a failed attempt, so that a task that
# kills its worker (out of memory…) cannot take workers down forever.
HARRIER_LOST_ATTEMPTS = int(os.environ.get("HARRIER_LOST_ATTEMPTS", "3"))
# Largest flow source accepted, in bytes.
HARRIER_MAX_FLOW_BYTES = int(os.environ.get("HARRIER_MAX_FLOW_BYTES", str(1024 * 1024)))
# --- io.harrier.celery.Task (workers/tasktypes/celery_task.py, docs/celery-tasks.md) ------------
# The broker of the Celery cluster whose tasks flows run by name (Harrier's own by default), and
# the result backend its workers store results in: Harrier reads them there. Only that task's
# separate Celery app has a result backend; Harrier's own tasks keep none.
HARRIER_CELERY_TASKS_BROKER = os.environ.get("HARRIER_CELERY_TASKS_BROKER") or CELERY_BROKER_URL
# Celery's usual Redis setup keeps results on the broker's Redis: that is the default, when it is one.
HARRIER_CELERY_RESULT_BACKEND = os.environ.get("HARRIER_CELERY_RESULT_BACKEND") or (
    HARRIER_CELERY_TASKS_BROKER if HARRIER_CELERY_TASKS_BROKER.startswith(("redis://", "rediss://")) else "")
# The `global_keyprefix` of the workers' result_backend_transport_options, when they set one.
HARRIER_CELERY_RESULT_KEY_PREFIX = os.environ.get("HARRIER_CELERY_RESULT_KEY_PREFIX", "")
# Where a task without `queue` goes: Celery's default queue unless set.
HARRIER_CELERY_TASKS_QUEUE = os.environ.get("HARRIER_CELERY_TASKS_QUEUE", "celery")
