"""Settings of the chatauth Django sample site.

Runs as is: ``python manage.py migrate && python manage.py runserver``, then log in as
``alice`` / ``wonderland`` (or ``bob`` / ``builder``).

Embedded defaults: a SQLite database next to this project, chat tokens in that database
(chatauth's ORM store) and the generic JWT provider with a development secret. Environment
variables switch to a real chat server, e.g. Matrix::

    CHATAUTH_PROVIDER=matrix CHATAUTH_MATRIX_HOMESERVER_URL=http://127.0.0.1:8008 \\
    CHATAUTH_MATRIX_JWT_SECRET=... python manage.py runserver

Every ``CHATAUTH_<KEY>`` variable becomes ``CHATAUTH["<KEY>"]``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from chatauth.config import normalize_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# Development only: set DJANGO_SECRET_KEY (and DJANGO_DEBUG=0) anywhere else.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-chatauth-sample-site-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", *os.environ.get("DJANGO_ALLOWED_HOSTS", "").split()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chatauth.integrations.django",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatauth.integrations.django.middleware.ChatAuthMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "django_site.urls"

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

WSGI_APPLICATION = "django_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", BASE_DIR / "db.sqlite3"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# The chat page's script is shared by the three sample projects.
STATICFILES_DIRS = [BASE_DIR.parent / "shared"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"


def _chatauth_settings() -> dict[str, object]:
    chat = {
        key.upper(): value for key, value in normalize_settings(os.environ, "CHATAUTH_").items()
    }
    chat.setdefault("PROVIDER", "jwt")
    # Readable chat UIDs for the demo ("user-alice"); the library default is the primary key,
    # which never changes when a user renames themselves.
    chat.setdefault("UID_MAPPER", "username")
    if chat["PROVIDER"] == "jwt":
        # A development secret derived from SECRET_KEY: stable across runserver restarts and
        # worker processes. Set CHATAUTH_JWT_SECRET to the secret your chat server verifies.
        chat.setdefault(
            "JWT_SECRET", hashlib.sha256(f"chatauth-jwt:{SECRET_KEY}".encode()).hexdigest()
        )
    return chat


CHATAUTH = _chatauth_settings()
