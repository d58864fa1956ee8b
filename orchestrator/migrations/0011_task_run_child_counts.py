"""How many children each task run has, by task and state, kept by the database itself.

A step of the executor about one task run inside a loop reads that task run, the task runs above
it and the few beside it, not the loop's thousands of other children: what it needs to know of
those (how many are still running, whether one failed, how many values have started) it reads
from `orchestrator_childcount`, one row per (parent task run, task, state). Triggers keep the rows
in step with every insert, state change and deletion of a task run, whichever code makes it, in
the same transaction; so the counts are never ahead of or behind the task runs they count.

Statement-level triggers with transition tables: a step that writes five hundred task runs in one
INSERT updates each count row once. PostgreSQL only; on SQLite (server local) the executor reads
every task run of an execution on each step, as it always did (docs/architecture.md).
"""

from django.db import migrations, models
from django.db.models import Q

COUNT_TABLE = "orchestrator_childcount"

CREATE = f"""
CREATE TABLE IF NOT EXISTS {COUNT_TABLE} (
    parent_task_run_id varchar(32) NOT NULL,
    task_id varchar(255) NOT NULL,
    state varchar(16) NOT NULL,
    count integer NOT NULL,
    PRIMARY KEY (parent_task_run_id, task_id, state)
);

CREATE OR REPLACE FUNCTION orchestrator_childcount_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNT_TABLE} (parent_task_run_id, task_id, state, count)
    SELECT parent_task_run_id, task_id, state, count(*) FROM new_rows
    WHERE parent_task_run_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (parent_task_run_id, task_id, state) DO UPDATE SET count = {COUNT_TABLE}.count + EXCLUDED.count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION orchestrator_childcount_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNT_TABLE} (parent_task_run_id, task_id, state, count)
    SELECT parent, task, st, sum(delta) FROM (
        SELECT n.parent_task_run_id AS parent, n.task_id AS task, n.state AS st, 1 AS delta
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.parent_task_run_id IS NOT NULL AND o.state IS DISTINCT FROM n.state
        UNION ALL
        SELECT o.parent_task_run_id, o.task_id, o.state, -1
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.parent_task_run_id IS NOT NULL AND o.state IS DISTINCT FROM n.state
    ) changes GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (parent_task_run_id, task_id, state) DO UPDATE SET count = {COUNT_TABLE}.count + EXCLUDED.count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION orchestrator_childcount_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT parent_task_run_id, task_id, state, count(*) AS n FROM old_rows
        WHERE parent_task_run_id IS NOT NULL GROUP BY 1, 2, 3
    )
    UPDATE {COUNT_TABLE} c SET count = c.count - gone.n FROM gone
    WHERE c.parent_task_run_id = gone.parent_task_run_id AND c.task_id = gone.task_id AND c.state = gone.state;
    -- The counts of a task run deleted with its children (an execution purged) go with it.
    DELETE FROM {COUNT_TABLE} c USING (SELECT DISTINCT parent_task_run_id FROM old_rows
                                       WHERE parent_task_run_id IS NOT NULL) parents
    WHERE c.parent_task_run_id = parents.parent_task_run_id AND c.count = 0;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS orchestrator_childcount_insert ON orchestrator_taskrun;
CREATE TRIGGER orchestrator_childcount_insert AFTER INSERT ON orchestrator_taskrun
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_childcount_inserted();
DROP TRIGGER IF EXISTS orchestrator_childcount_update ON orchestrator_taskrun;
CREATE TRIGGER orchestrator_childcount_update AFTER UPDATE ON orchestrator_taskrun
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION orchestrator_childcount_updated();
DROP TRIGGER IF EXISTS orchestrator_childcount_delete ON orchestrator_taskrun;
CREATE TRIGGER orchestrator_childcount_delete AFTER DELETE ON orchestrator_taskrun
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_childcount_deleted();

-- The task runs already there (an upgrade while executions run): counted once, under the lock
-- that keeps task runs from changing meanwhile.
LOCK TABLE orchestrator_taskrun IN SHARE MODE;
DELETE FROM {COUNT_TABLE};
INSERT INTO {COUNT_TABLE} (parent_task_run_id, task_id, state, count)
SELECT parent_task_run_id, task_id, state, count(*) FROM orchestrator_taskrun
WHERE parent_task_run_id IS NOT NULL GROUP BY 1, 2, 3;
"""

DROP = f"""
DROP TRIGGER IF EXISTS orchestrator_childcount_insert ON orchestrator_taskrun;
DROP TRIGGER IF EXISTS orchestrator_childcount_update ON orchestrator_taskrun;
DROP TRIGGER IF EXISTS orchestrator_childcount_delete ON orchestrator_taskrun;
DROP FUNCTION IF EXISTS orchestrator_childcount_inserted();
DROP FUNCTION IF EXISTS orchestrator_childcount_updated();
DROP FUNCTION IF EXISTS orchestrator_childcount_deleted();
DROP TABLE IF EXISTS {COUNT_TABLE};
"""


def create_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_counts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):

    dependencies = [
        ("orchestrator", "0010_execution_schedule_date"),
    ]

    operations = [
        migrations.AlterField(
            model_name="taskrun",
            name="execution",
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name="task_runs",
                                    to="orchestrator.execution"),
        ),
        migrations.AddIndex(
            model_name="taskrun",
            index=models.Index(fields=["execution", "task_id"], name="taskrun_task_idx"),
        ),
        migrations.AddIndex(
            model_name="taskrun",
            index=models.Index(condition=Q(parent_task_run_id__isnull=False),
                               fields=["parent_task_run_id", "iteration"], name="taskrun_parent_idx"),
        ),
        migrations.AddIndex(
            model_name="taskrun",
            index=models.Index(condition=Q(dispatched__isnull=True, state="CREATED"), fields=["execution", "seq"],
                               name="taskrun_unsent_idx"),
        ),
        migrations.RunPython(create_counts, drop_counts),
    ]
