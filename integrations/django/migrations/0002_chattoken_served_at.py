# The sweep's "last served at" column (issue 13).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chatauth", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="chattoken",
            name="served_at",
            field=models.DateTimeField(
                blank=True, db_index=True, null=True, verbose_name="last served at"
            ),
        ),
    ]
