"""Indexes for the API's execution search: by state, and by labels (`labels @> '[{…}]'`).

The labels' GIN index exists on PostgreSQL only: SQLite (server local) has no such index and
searches labels by scanning, which suits its size."""

from django.db import migrations, models

LABELS_INDEX = "execution_labels_gin"


def create_labels_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {LABELS_INDEX} ON orchestrator_execution USING gin (labels jsonb_path_ops)"
        )


def drop_labels_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LABELS_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('orchestrator', '0005_flow_triggers'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='execution',
            index=models.Index(fields=['state', '-start_date'], name='execution_state_idx'),
        ),
        migrations.RunPython(create_labels_index, drop_labels_index),
    ]
