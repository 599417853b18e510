"""mcpauth settings: everything comes from the environment, with an embedded default.

No DATABASE_URL -> SQLite in var/; no REDIS_URL -> a cache table in that database and eager Celery.
"""

from pathlib import Path

import dj_database_url

from infra.logs import logging_config

from .env import env_bool, env_email, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MCPAUTH_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# An insecure placeholder; the mcpauth.E001 system check refuses it when DEBUG is off.
INSECURE_SECRET_KEY = "django-insecure-mcpauth-development-only-never-deploy"


def _embedded_key(name: str, inherit: str | None = None) -> str:
    """The embedded default keeps each random key in its own file in var/, so `make run` needs no setup.

    `inherit`: the value a key takes when var/ already holds a database made before that key had its
    own file (then it was SECRET_KEY, and changing it would break every stored secret).
    """
    path = VAR_DIR / name
    if not path.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        existing = inherit is not None and (VAR_DIR / "mcpauth.sqlite3").exists()
        path.write_text(inherit if existing else secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Three keys, each rotated on its own (docs/operations.md, "Keys and their rotation"):
# SECRET_KEY signs sessions and CSRF tokens; DIGEST_KEY keys the HMAC digests of stored secrets and
# tokens; KEY_ENCRYPTION_KEY encrypts signing keys at rest. Deployments (DATABASE_URL set) must pass
# all three (mcpauth.E001/E002/E003); the embedded default makes and keeps its own in var/.
if env_str("DATABASE_URL"):
    SECRET_KEY = env_str("SECRET_KEY") or INSECURE_SECRET_KEY
    DIGEST_KEY = env_str("DIGEST_KEY")
    KEY_ENCRYPTION_KEY = env_str("KEY_ENCRYPTION_KEY")
else:
    SECRET_KEY = env_str("SECRET_KEY") or _embedded_key("secret_key")
    # A var/ database from before these files existed used SECRET_KEY for both: it keeps that value.
    DIGEST_KEY = env_str("DIGEST_KEY") or _embedded_key("digest_key", inherit=SECRET_KEY)
    KEY_ENCRYPTION_KEY = env_str("KEY_ENCRYPTION_KEY") or _embedded_key("key_encryption_key", inherit=SECRET_KEY)

# Previous keys, still accepted while what was made under them is in use (docs/operations.md, "Keys"):
# Django's own SECRET_KEY_FALLBACKS (sessions, CSRF, signed values) and DIGEST_KEY_FALLBACKS (the
# digests of secrets: checked under DIGEST_KEY, then under each of these). KEY_ENCRYPTION_KEY takes
# its previous keys after a comma (`new,old`) and `manage.py reencryptkeys` re-encrypts under `new`.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
DIGEST_KEY_FALLBACKS = env_list("DIGEST_KEY_FALLBACKS")

PUBLIC_URL = env_url("PUBLIC_URL", "http://127.0.0.1:8000")
# The issuer never comes from the Host header (PUBLIC_URL or a registered custom domain does),
# so accepting any Host is safe; operators may still narrow it.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = [PUBLIC_URL] + env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "oauth2_provider",
    "mcpauth_service.apps.McpauthServiceConfig",
    "projects",
    "oauth",
    "enterprise",
    "activity",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "mfa",
    "identity",
    "dashboard",
    "webhooks",
]

MIDDLEWARE = [
    "mcpauth_service.health.ProbeMiddleware",  # /healthz, /readyz and /metrics before anything else
    "infra.observe.RequestObservation",  # request id, metrics, one log line per request
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "projects.tenancy.CustomDomainMiddleware",
    "django.middleware.common.CommonMiddleware",
    # BROWSER_MIDDLEWARE below, for every route but the OAuth JSON endpoints (see the module).
    "infra.middleware.BrowserMiddleware",
    "projects.tenancy.TenantMiddleware",
]
# Pages people use (dashboard, sign-in, consent, authorize) get all of these, in this order;
# metadata, JWKS, token, revoke, introspect and /api/oauth/* need none of them.
BROWSER_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): a second factor in this session
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "infra.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "mcpauth_service.urls"
WSGI_APPLICATION = "mcpauth_service.wsgi.application"
APPEND_SLASH = False  # no trailing-slash redirects anywhere (RFC 8414 clients must not be redirected)

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
            # Off by default: a health check is a `SELECT 1` round trip at the start of every request.
            # A connection the server dropped fails one request, then Django replaces it.
            conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Parameters travel apart from the SQL and psycopg prepares a statement on its 5th use, so
        # PostgreSQL parses and plans each hot-path statement once per connection, not per request.
        DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env_bool(
            "DB_SERVER_SIDE_BINDING", True)
        # A database that does not answer fails the request (503) within this many seconds (libpq,
        # whole seconds, at least 2) instead of holding a worker (docs/reliability.md).
        DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 3))
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "mcpauth.sqlite3",
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss"))
# Every Redis connection (cache, raw bytes, rate limits, readiness, Celery) gives up within these
# many seconds: a stopped or frozen Redis fails a request (503) or is skipped, never hangs it.
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 1.0)
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 1.0)
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    CACHES = {
        "default": {
            "BACKEND": "infra.cache.RedisCache",  # django-redis's, with the outage rules
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mcpauth"),
            "OPTIONS": {
                # redis-py connection keyword arguments of the pool (django-redis). One immediate retry
                # on a dropped connection (a restarted Redis), none on a timeout: a frozen Redis costs
                # one REDIS_TIMEOUT, not ten.
                "CONNECTION_POOL_KWARGS": {
                    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                    "socket_timeout": REDIS_TIMEOUT,
                    "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                },
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        # Longer than the 1 s BRPOP a worker waits on for its next task, so only a stuck Redis trips it.
        "socket_timeout": max(5.0, REDIS_TIMEOUT),
        "max_retries": 3,  # publishing a task (never on the request path) gives up after these
    }
else:
    # A table in the database every worker process shares (see infra/cache.py), never
    # one process's memory: what one worker revokes, counts or learns, the others must see.
    CACHES = {"default": {"BACKEND": "infra.cache.DatabaseCache", "LOCATION": "mcpauth_cache",
                          "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mcpauth")}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True

AUTH_USER_MODEL = "projects.User"
AUTHENTICATION_BACKENDS = ["projects.auth.OperatorBackend"]
LOGIN_URL = "dashboard:login"
# Second factors (mfa/, docs/operators.md). infra.ratelimit is the one throttle of second-step codes
# (shared by every worker, 429 with Retry-After), so django-otp's own per-device delay is off.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_TOTP_ISSUER = "mcpauth"
LOGIN_REDIRECT_URL = "dashboard:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# People's passwords: Django's PBKDF2. Client secrets: the fast keyed hasher (see oauth/clients/hashers.py).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "oauth.clients.hashers.HmacSecretHasher",
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO") else None
# Number of trusted reverse proxies in front of us; the client IP is read from X-Forwarded-For.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True  # serve app static files even before collectstatic has run
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ASCII JSON (\u escapes): a value that cannot be encoded as UTF-8 (a lone surrogate stored before
    # requests were parsed strictly) can never make a listing fail.
    "UNICODE_JSON": False,
}

# Operator dashboard: anyone may sign up as an operator unless OPERATOR_SIGNUP=false.
OPERATOR_SIGNUP_ENABLED = env_bool("OPERATOR_SIGNUP", True)
# OpenAPI for the management API and the OAuth endpoints (/api/schema, /docs/endpoints).
SPECTACULAR_SETTINGS = {
    "TITLE": "mcpauth API",
    "DESCRIPTION": "The management API (operator API tokens, `Authorization: Bearer mcpop_…`) "
                   "and the per-project OAuth 2.1 endpoints under `/p/{slug}`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "/" + STATIC_URL + "dashboard/vendor/swagger-ui",  # vendored: CSP allows 'self' only
    "SWAGGER_UI_FAVICON_HREF": None,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "dashboard.api_schema.add_oauth_endpoints",
    ],
}

# Behaviour of django-oauth-toolkit. Per-project policy lives on the Project row; this is the
# safe service-wide baseline the toolkit enforces underneath it.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth.RefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth.IDToken"
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "oauth.DeviceGrant"  # project-scoped, codes kept as digests
OAUTH2_PROVIDER = {
    "CLIENT_SECRET_HASHER": "mcpauth_hmac",
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": env_int("REFRESH_TOKEN_GRACE_SECONDS", 30),
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "ALLOW_URI_WILDCARDS": False,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    # RFC 8628: oauth.grants.device_code finds the device grant within the project; the toolkit's
    # default pre-token hook looks it up across all projects, so it is not used.
    "OAUTH_PRE_TOKEN_VALIDATION": [],
    # The toolkit's OpenID Connect support, used through its validator hooks (oauth.tokens.id_token) per project:
    # Project.openid decides, with the project's issuer and keys. None of its global OIDC views (one
    # issuer, one key) is mounted, and OAUTH2_SERVER_CLASS is ours.
    "OIDC_ENABLED": True,
    "ID_TOKEN_EXPIRE_SECONDS": 3600,
    # Tokens (issue 5): the tenant-aware validator/backend/server, prefixed or JWT token values.
    "OAUTH2_VALIDATOR_CLASS": "oauth.validator.Validator",
    "OAUTH2_BACKEND_CLASS": "oauth.backend.TenantOAuthLibCore",
    "OAUTH2_SERVER_CLASS": "oauth.server.Server",
    "ACCESS_TOKEN_GENERATOR": "oauth.tokens.issue.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauth.tokens.issue.generate_refresh_token",
    # CIMD: the toolkit's fetcher hook, made to go through infra.outbound; per-project resolution
    # is ours (oauth.clients.cimd.resolve), so the toolkit's global CIMD_ENABLED stays off.
    "CIMD_METADATA_FETCHER": "oauth.clients.cimd.OutboundMetadataFetcher",
    "CIMD_MAX_DOCUMENT_SIZE": 5 * 1024,
    "CIMD_FETCH_TIMEOUT_SECONDS": env_int("CIMD_FETCH_TIMEOUT_SECONDS", 5),
    "CIMD_METADATA_MIN_AGE_SECONDS": env_int("CIMD_METADATA_MIN_AGE_SECONDS", 300),
    "CIMD_METADATA_MAX_AGE_SECONDS": env_int("CIMD_METADATA_MAX_AGE_SECONDS", 24 * 3600),
    "CIMD_FAILURE_BACKOFF_SECONDS": env_int("CIMD_FAILURE_BACKOFF_SECONDS", 60),
    "CIMD_MAX_CONCURRENT_FETCHES": 10,
}

# Introspection answers are cached this long (bounded by the token's own lifetime); revocation
# replaces them with a tombstone, so this bounds only staleness after a client is deleted.
INTROSPECTION_CACHE_SECONDS = env_int("INTROSPECTION_CACHE_SECONDS", 60)
# A token endpoint transaction that only issued tokens commits without waiting for the disk flush
# (PostgreSQL synchronous_commit=off for that transaction; see docs/configuration.md).
TOKEN_ASYNC_COMMIT = env_bool("TOKEN_ASYNC_COMMIT", True)

# Outbound fetches (CIMD). Tests relax the private-address guard explicitly; nothing else does.
OUTBOUND_ALLOW_PRIVATE_ADDRESSES = env_bool("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", False)

# `make bench` only: route /bench/hello, the hello-world ceiling the benchmark compares against.
BENCH_HELLO = env_bool("BENCH_HELLO", False)
# Extra CA certificates (a PEM file) trusted for outbound TLS; tests trust their local server this way.
OUTBOUND_CA_BUNDLE = env_str("OUTBOUND_CA_BUNDLE", "")

# Upstream identity providers' fixed endpoints (docs/identity.md); tests point them at local stand-ins.
# Microsoft's `{tenant}` is the provider's tenant (`common` unless set); generic OpenID Connect
# providers are found by their own issuer's discovery document.
IDENTITY_UPSTREAMS = {
    "github": {"authorize": "https://github.com/login/oauth/authorize",
               "token": "https://github.com/login/oauth/access_token",
               "api": "https://api.github.com"},
    "google": {"issuer": "https://accounts.google.com"},
    "microsoft": {"issuer": "https://login.microsoftonline.com/{tenant}/v2.0"},
}
OUTBOUND_TIMEOUT_SECONDS = env_int("OUTBOUND_TIMEOUT_SECONDS", 5)
# Webhook deliveries: how often due ones are swept, how long one receiver may take (docs/operations.md).
WEBHOOK_SWEEP_SECONDS = env_int("WEBHOOK_SWEEP_SECONDS", 5)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)

# RATE_LIMITS=off turns every rate limit off (load tests only; system check mcpauth.W010 says so).
# Otherwise the defaults of infra/ratelimit.py apply, overridable per project (docs/configuration.md).
# (Any other value leaves them on: a mistyped `off` fails safe.)
RATE_LIMITS_ENABLED = env_str("RATE_LIMITS").strip().lower() != "off"

# Each process writes its pending activity counts and timeline events (activity/record.py) every
# this many seconds, in one Redis round trip (or one table write in the embedded default). 0: no
# background writer (tests: readers flush).
ACTIVITY_FLUSH_SECONDS = env_float("ACTIVITY_FLUSH_SECONDS", 1.0)

# The reaper (oauth/tokens/reaper.py): unused and idle open/CIMD clients, expired codes and tokens.
CELERY_BEAT_SCHEDULE = {
    "reap-clients-and-tokens": {"task": "oauth.tasks.reap", "schedule": env_int("REAPER_INTERVAL_SECONDS", 3600)},
    # Signing keys older than their project's key_rotation_days are rotated (projects/tasks.py).
    "rotate-signing-keys": {"task": "projects.tasks.rotate_due_signing_keys", "schedule": 3600},
    # Closed minutes of the activity counters (Redis) into PostgreSQL (activity/rollup.py); a no-op without Redis.
    "roll-up-activity": {"task": "activity.tasks.rollup", "schedule": env_int("ACTIVITY_ROLLUP_SECONDS", 60)},
    # Due webhook deliveries are sent (webhooks/delivery.py); in the embedded default a thread of each
    # web process sweeps instead (webhooks/dispatcher.py). The first retry waits 10 s: sweep well within.
    "deliver-webhooks": {"task": "webhooks.tasks.deliver_due", "schedule": env_int("WEBHOOK_SWEEP_SECONDS", 5)},
    # Email links (verification, password reset) a day past their expiry (projects/tasks.py).
    "reap-account-tokens": {"task": "projects.tasks.reap_account_tokens", "schedule": 3600},
}

# Logs (infra/logs.py): LOG_FORMAT=text (default) or json, one line per event; docs/operations.md.
LOGGING = logging_config(env_str("LOG_FORMAT", "text").strip().lower(), env_str("LOG_LEVEL", "INFO"))

# Email (verification and password-reset links): EMAIL_URL (smtp:// with STARTTLS, smtps://), sent by
# Celery, never on a request; unset, messages are written as files to var/mail (docs/configuration.md).
globals().update(env_email("EMAIL_URL", VAR_DIR / "mail"))
EMAIL_FROM = env_str("EMAIL_FROM", "mcpauth <noreply@localhost>")
DEFAULT_FROM_EMAIL = SERVER_EMAIL = EMAIL_FROM

# GET /metrics (Prometheus text format) for a Bearer METRICS_TOKEN; 404 while unset (docs/operations.md).
METRICS_TOKEN = env_str("METRICS_TOKEN")
