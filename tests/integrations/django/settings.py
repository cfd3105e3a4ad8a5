"""Django settings for the chatauth Django adapter's tests (``tests/integrations/django``).

Selected by ``DJANGO_SETTINGS_MODULE=tests.integrations.django.settings`` (tox) or, when the
variable is unset, by this folder's conftest.
"""

from __future__ import annotations

import os
import tempfile

from chatauth.testing import canary

SECRET_KEY = canary.secret("django-tests-secret-key")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.integrations.django.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "chatauth.integrations.django",
    # API clients: REST framework tokens, SimpleJWT with its blacklist, django-ninja.
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_simplejwt.token_blacklist",
    # allauth headless: app clients log in for an X-Session-Token.
    "allauth",
    "allauth.account",
    "allauth.headless",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "chatauth.integrations.django.middleware.ChatAuthMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The test runner uses an in-memory test database; this name only matters to tools run
# with these settings outside pytest (makemigrations). Subprocess tests bring their own.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "chatauth-django-tests.sqlite3"),
    }
}

STATIC_URL = "/static/"
LOGIN_REDIRECT_URL = "/untouched/"
LOGOUT_REDIRECT_URL = "/untouched/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

CHATAUTH = {
    "PROVIDER": "jwt",
    "JWT_SECRET": canary.secret("django-tests-jwt-secret"),
    "TOKEN_TTL": 600,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "allauth.headless.contrib.rest_framework.authentication.XSessionTokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}
SIMPLE_JWT = {
    # HS256 wants 32 bytes at least (PyJWT warns below that, and warnings fail the tests).
    "SIGNING_KEY": "chatauth-tests-simplejwt-signing-key-0123456789",
    "TOKEN_OBTAIN_SERIALIZER": (
        "chatauth.integrations.django.simplejwt.ChatTokenObtainPairSerializer"
    ),
    "ROTATE_REFRESH_TOKENS": False,
}
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_EMAIL_VERIFICATION = "none"
HEADLESS_ONLY = True
HEADLESS_FRONTEND_URLS: dict[str, str] = {}
