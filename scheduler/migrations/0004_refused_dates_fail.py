"""A date whose inputs are refused now gets an execution FAILED at once, as in Kestra, instead of a
`skipped` reason on its key. Keys skipped before get that execution here, with the reason as its
ERROR log line, so that no reason is lost when the column goes."""

from django.db import migrations

from workers.ids import new_id


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def fail_skipped_dates(apps, schema_editor):
    ScheduledDate = apps.get_model("scheduler", "ScheduledDate")
    Flow = apps.get_model("orchestrator", "Flow")
    Execution = apps.get_model("orchestrator", "Execution")
    LogEntry = apps.get_model("orchestrator", "LogEntry")
    for key in ScheduledDate.objects.exclude(skipped="").filter(execution_id__isnull=True).iterator():
        flow = Flow.objects.filter(namespace=key.namespace, flow_id=key.flow_id).first()
        execution_id = new_id()
        stamp = _iso(key.created)
        Execution.objects.create(
            id=execution_id, namespace=key.namespace, flow_id=key.flow_id,
            flow_revision=flow.revision if flow is not None else 1, state="FAILED",
            state_history=[{"state": "CREATED", "date": stamp}, {"state": "FAILED", "date": stamp}],
            inputs={}, labels=[{"key": "system.correlationId", "value": execution_id}],
            trigger={"id": key.trigger_id, "variables": {"date": _iso(key.date)}},
            start_date=key.created, end_date=key.created, updated=key.created,
        )
        LogEntry.objects.create(id=new_id(), execution_id=execution_id, namespace=key.namespace,
                                flow_id=key.flow_id, level="ERROR", message=key.skipped, timestamp=key.created)
        key.execution_id = execution_id
        key.save(update_fields=["execution_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("scheduler", "0003_polling_triggers"),
        ("orchestrator", "0009_execution_namespace_prefix_index"),
    ]

    operations = [
        migrations.RunPython(fail_skipped_dates, migrations.RunPython.noop),
        migrations.RemoveField(model_name="scheduleddate", name="skipped"),
    ]
