"""Indexes for the API's log search (orchestrator/api/logs.py): by date, by flow, by namespace
prefix, and for the text of `q`.

The last two are PostgreSQL's own, so they are created by hand and skipped on SQLite (server
local), which searches by scanning, as suits its size. `q` is matched as Django's icontains
writes it, `UPPER(message) LIKE UPPER('%…%')`: a trigram index on UPPER(message) serves it. It
needs the pg_trgm extension; a database user who may not create it gets the search without that
index (slower on large tables), not a failed migration."""

import logging

from django.db import DatabaseError, migrations, models, transaction

logger = logging.getLogger("harrier.migrations")
NAMESPACE_INDEX = "log_namespace_prefix_idx"
MESSAGE_INDEX = "log_message_trgm_idx"


def create_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("orchestrator", "LogEntry")._meta.db_table
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NAMESPACE_INDEX} ON {table} "
                          "(namespace varchar_pattern_ops, timestamp DESC)")
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        logger.warning("Log search by text will scan: the pg_trgm extension cannot be created (%s)", error)
        return
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {MESSAGE_INDEX} ON {table} USING gin (upper(message) gin_trgm_ops)")


def drop_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {NAMESPACE_INDEX}")
        schema_editor.execute(f"DROP INDEX IF EXISTS {MESSAGE_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('orchestrator', '0007_namespace_grants_kv_admin'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='logentry',
            index=models.Index(fields=['-timestamp'], name='log_timestamp_idx'),
        ),
        migrations.AddIndex(
            model_name='logentry',
            index=models.Index(fields=['namespace', 'flow_id', '-timestamp'], name='log_flow_idx'),
        ),
        migrations.RunPython(create_postgres_indexes, drop_postgres_indexes),
    ]
