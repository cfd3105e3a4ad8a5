"""ASGI config: ``uvicorn django_site.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

application = get_asgi_application()

from django.conf import settings  # noqa: E402 - after the app registry is ready

if settings.DEBUG:  # runserver serves static files itself; uvicorn needs this in development
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
