"""Typed inputs end to end: given as text, stored typed, read typed by real worker processes; a
SECRET input stored encrypted and masked wherever the worker writes."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TYPED = """
id: typed-inputs
namespace: tests
inputs:
  - id: count
    type: INT
    min: 1
  - id: ratio
    type: FLOAT
  - id: enabled
    type: BOOLEAN
  - id: payload
    type: JSON
  - id: when
    type: DATETIME
  - id: day
    type: DATE
  - id: wait
    type: DURATION
  - id: sizes
    type: ARRAY
    itemType: INT
  - id: db.port
    type: INT
  - id: label
    type: STRING
    defaults: "{{ inputs.count }} x {{ flow.id }}"
  - id: note
    type: STRING
    required: false
tasks:
  - id: compute
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ inputs.count + 1 }}|{{ inputs.ratio * 2 }}|{{ inputs.enabled ? 'on' : 'off' }}|{{ inputs.payload.items | length }}|{{ inputs.sizes[1] + 1 }}|{{ inputs.db.port + 1 }}|{{ inputs.note ?? 'none' }}
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.when }} {{ inputs.day }} {{ inputs.wait }} {{ inputs.label }}"
"""

GIVEN = {
    "count": "41", "ratio": "0.25", "enabled": "true", "payload": '{"items": [1, 2, 3]}',
    "when": "2024-01-15T10:00:00+02:00", "day": "2024-01-15", "wait": "P1D", "sizes": "[1, \"2\"]",
    "db.port": "5432", "unknown": "dropped",
}


def test_string_inputs_are_stored_typed_and_read_typed_by_workers(run_flow):
    outcome = run_flow(TYPED, inputs=GIVEN, expect_logs=1)
    assert outcome.state == "SUCCESS", [(r.task_id, r.attempts) for r in outcome.runs]
    assert outcome.execution.inputs == {
        "count": 41, "ratio": 0.25, "enabled": True, "payload": {"items": [1, 2, 3]},
        "when": "2024-01-15T08:00:00Z", "day": "2024-01-15", "wait": "PT24H", "sizes": [1, 2],
        "db": {"port": 5432}, "label": "41 x typed-inputs", "note": None,
    }
    assert outcome.run("compute").outputs == {"value": "42|0.5|on|3|3|5433|none"}
    assert outcome.logs_of("show") == ["2024-01-15T08:00:00Z 2024-01-15 PT24H 41 x typed-inputs"]


def test_invalid_inputs_create_no_execution(cluster, namespace):
    from orchestrator.models import Execution
    from orchestrator.repository import InvalidInputs, create_execution, deploy
    from tests.harness import with_namespace

    flow, _ = deploy(with_namespace(TYPED, namespace))
    with pytest.raises(InvalidInputs) as caught:
        create_execution(flow.namespace, flow.flow_id, inputs={**GIVEN, "count": "12x", "when": "tomorrow",
                                                               "sizes": "[1, \"a\"]"})
    assert [error["input"] for error in caught.value.errors] == ["count", "when", "sizes"]
    assert "input `count`: '12x' is not a whole number" in str(caught.value)
    assert not Execution.objects.filter(namespace=namespace).exists()


SECRET = """
id: secret-input
namespace: tests
inputs:
  - id: password
    type: SECRET
  - id: user
    type: STRING
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "connecting as {{ inputs.user }} with {{ inputs.password }} ({{ inputs.password | upper }})"
  - id: keep
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.password }}"
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "refused {{ inputs.password }}"
"""

PASSWORD = "hunter2-Very-Secret"


def _rows_containing(text: str, execution_id: str) -> list[str]:
    """Every stored row of the execution whose text holds `text`, by table."""
    found = []
    with connection.cursor() as cursor:
        for table, column in (("orchestrator_execution", "id"), ("orchestrator_taskrun", "execution_id"),
                              ("orchestrator_logentry", "execution_id")):
            cursor.execute(f"SELECT count(*) FROM {table} t WHERE t.{column} = %s AND row_to_json(t)::text ILIKE %s",
                           [execution_id, f"%{text}%"])
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_a_secret_input_is_stored_encrypted_and_masked_in_logs_and_outputs(run_flow):
    from orchestrator import encryption

    outcome = run_flow(SECRET, inputs={"password": PASSWORD, "user": "ada"}, expect_logs=2)
    assert outcome.state == "FAILED"  # the last task fails on purpose, with the secret in its message
    stored = outcome.execution.inputs["password"]
    assert encryption.is_encrypted(stored) and encryption.decrypt(stored) == PASSWORD
    assert outcome.logs_of("log") == ["connecting as ada with ******** (********)"]
    assert outcome.run("keep").outputs == {"value": "********"}
    assert outcome.run("fail").attempts[-1]["error"] == "refused ********"
    assert _rows_containing(PASSWORD, outcome.execution.id) == []
    assert _rows_containing("hunter2", outcome.execution.id) == []
    assert _rows_containing("********", outcome.execution.id) != []  # the search itself works


CLI_FLOW = """
id: cli-inputs
namespace: tests
inputs:
  - id: age
    type: INT
    min: 18
  - id: tags
    type: ARRAY
    itemType: STRING
  - id: token
    type: SECRET
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.age + 1 }} {{ inputs.tags | join(',') }} {{ inputs.token }}"
"""


def test_flow_run_types_its_input_options(tmp_path):
    import json

    from tests.integration.test_local import flow_run

    completed = flow_run(tmp_path, CLI_FLOW, "--json", "--input", "age=41", "--input", 'tags=["a","b"]',
                         "--input", f"token={PASSWORD}")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["inputs"]["age"] == 41 and document["inputs"]["tags"] == ["a", "b"]
    assert document["inputs"]["token"]["type"] == "io.harrier.datatype:encrypted"
    assert [log["message"] for log in document["logs"]] == ["42 a,b ********"]
    assert PASSWORD not in completed.stdout


def test_flow_run_prints_every_input_error_and_exits_non_zero(tmp_path):
    from tests.integration.test_local import flow_run

    completed = flow_run(tmp_path, CLI_FLOW, "--input", "age=12x", "--input", "tags=a,b", "--input", "colour=red")
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "--input colour: the flow declares no input 'colour'; ignored" in completed.stderr
    assert "invalid inputs, no execution created" in completed.stderr
    assert "  input `age`: '12x' is not a whole number" in completed.stderr
    assert "  input `tags`: 'a,b' is not a list such as [\"a\", \"b\"]" in completed.stderr
    assert "  input `token`: a value is required" in completed.stderr
    assert completed.stdout == ""
