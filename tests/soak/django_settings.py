"""The Django sample's settings with a cheap password hasher (see tests/soak/apps.py)."""

from django_site.settings import *  # noqa: F403 - the sample's settings, all of them

# Django's advice for test runs: key stretching is not what the soak measures.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
