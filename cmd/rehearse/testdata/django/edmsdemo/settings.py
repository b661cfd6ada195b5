"""Settings of the demo app. REHEARSE_DJANGO_MODE picks the variant:
plain (default) is stock simplejwt, as the seed's system: no blacklist, no
revocation; blacklist adds simplejwt's token_blacklist app, a reinit that
blacklists every outstanding refresh token, and access tokens that die with
the refresh token they came from. Database and key come from the environment."""
import os

from django.core.exceptions import ImproperlyConfigured

MODE = os.environ.get("REHEARSE_DJANGO_MODE", "plain")
if MODE not in ("plain", "blacklist"):
    raise ImproperlyConfigured(f"REHEARSE_DJANGO_MODE={MODE!r}: use plain or blacklist")
BLACKLIST = MODE == "blacklist"

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "users",
] + (["rest_framework_simplejwt.token_blacklist"] if BLACKLIST else [])
MIDDLEWARE = []
ROOT_URLCONF = "edmsdemo.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PGDATABASE"],
        "HOST": os.environ["PGHOST"],
        "PORT": os.environ["PGPORT"],
        "USER": os.environ["PGUSER"],
    }
}
# The fixture's hashes use 1000 iterations; the same here, so that a login
# does not re-hash (and probes every 10 ms stay cheap).
PASSWORD_HASHERS = ["users.hashers.FixturePBKDF2"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "edmsdemo.tokens.BlacklistAwareJWTAuthentication" if BLACKLIST
        else "rest_framework_simplejwt.authentication.JWTAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
if BLACKLIST:
    SIMPLE_JWT = {"TOKEN_OBTAIN_SERIALIZER": "edmsdemo.tokens.LinkedTokenObtainPairSerializer"}
# Errors (tracebacks) to stderr, for the test log; no request lines.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": True,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}

# --- REHEARSE_DJANGO_AUTH: how clients authenticate (begin) ---
# jwt (default): simplejwt access tokens only, as above. session: also
# Django session cookies (SessionAuthentication, a JSON login view at
# api/v1/auth/session/); session_flush: the same, and the reinit deletes
# every session (Django's form LoginView is at accounts/login/ too). drf_token: also DRF's TokenAuthentication (obtain_auth_token
# at api/v1/auth/token/). stateless: profile takes simplejwt's
# JWTStatelessUserAuthentication (no user lookup); the restore call keeps
# JWTAuthentication, whose staff check needs the user.
AUTH = os.environ.get("REHEARSE_DJANGO_AUTH", "jwt")
if AUTH not in ("jwt", "session", "session_flush", "drf_token", "stateless"):
    raise ImproperlyConfigured(f"REHEARSE_DJANGO_AUTH={AUTH!r}: use jwt, session, session_flush, drf_token or stateless")
SESSIONS = AUTH in ("session", "session_flush")
FLUSH_SESSIONS = AUTH == "session_flush"
DRF_TOKENS = AUTH == "drf_token"
if SESSIONS:
    INSTALLED_APPS += ["django.contrib.sessions"]
    MIDDLEWARE += [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] += ["rest_framework.authentication.SessionAuthentication"]
    # Django's form LoginView at accounts/login/, with its CSRF cookie.
    TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
                  "DIRS": [os.path.join(os.path.dirname(__file__), "templates")]}]
if DRF_TOKENS:
    INSTALLED_APPS += ["rest_framework.authtoken"]
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] += ["rest_framework.authentication.TokenAuthentication"]
if AUTH == "stateless":
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = ["rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"]
# --- REHEARSE_DJANGO_AUTH (end) ---

# --- REHEARSE_DJANGO_LOGIN: what a login names (begin) ---
# username (default): users.User, Django's AbstractUser as it comes. email:
# emailusers.User (table emailusers_user): USERNAME_FIELD = "email", unique,
# and no username column; simplejwt's login then takes {"email", "password"}.
LOGIN = os.environ.get("REHEARSE_DJANGO_LOGIN", "username")
if LOGIN not in ("username", "email"):
    raise ImproperlyConfigured(f"REHEARSE_DJANGO_LOGIN={LOGIN!r}: use username or email")
USERS_APP = "emailusers" if LOGIN == "email" else "users"
# One user app only: two AbstractUser models would clash on groups' user_set.
INSTALLED_APPS = [USERS_APP if app == "users" else app for app in INSTALLED_APPS]
AUTH_USER_MODEL = USERS_APP + ".User"
# --- REHEARSE_DJANGO_LOGIN (end) ---
