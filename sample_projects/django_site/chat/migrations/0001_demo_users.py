"""Demo users so a fresh checkout can log in: alice and bob (development data only)."""

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations

DEMO_USERS = {"alice": "wonderland", "bob": "builder"}


def create_demo_users(apps, schema_editor):
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for username, password in DEMO_USERS.items():
        user_model.objects.using(schema_editor.connection.alias).get_or_create(
            username=username, defaults={"password": make_password(password)}
        )


def remove_demo_users(apps, schema_editor):
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    user_model.objects.using(schema_editor.connection.alias).filter(
        username__in=DEMO_USERS
    ).delete()


class Migration(migrations.Migration):
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
    operations = [migrations.RunPython(create_demo_users, remove_demo_users)]
