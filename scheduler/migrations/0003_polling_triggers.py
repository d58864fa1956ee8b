from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scheduler", "0002_scheduled_date_skipped"),
    ]

    operations = [
        migrations.AddField(
            model_name="triggerstate",
            name="kind",
            field=models.CharField(default="schedule", max_length=16),
        ),
        migrations.AddField(
            model_name="triggerstate",
            name="poll_state",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
