"""The API keeps the contract its OpenAPI document states (issue 7): schemathesis reads
/api/v1/openapi.json as drf-spectacular serves it and calls every operation with generated
requests — valid ones and malformed ones — authenticated with a real token, through Django's WSGI
application against the test database. No answer may be a 500, and every answer must be one the
document lists, in the shape it gives.

Path parameters are drawn, more often than not, from real objects (a namespace with two flows and
a KV entry, a FAILED execution with task runs, logs and outputs, a PAUSED one), so that operations answer
with their success shapes and not only with 404. Each generated request runs in a savepoint
that is rolled back: no request sees what another one changed, and a DELETE of a fixture does
not take it away from the next.

How to run it, and how to ask for more examples: docs/api.md (Contract test).
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FlakyFailure, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err

from tests.harness import finished, wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# A bounded run for CI (2 shared cores): the number of generated requests per operation.
EXAMPLES = int(os.environ.get("HARRIER_CONTRACT_EXAMPLES", "8"))
# In CI the same requests every run; elsewhere new ones each run, and a failing example is replayed
# first next time. Hypothesis keeps that and its caches with the test run's home, never in the
# repository.
IN_CI = bool(os.environ.get("CI"))
HYPOTHESIS_HOME = Path(django_settings.HARRIER_HOME) / "hypothesis"
set_hypothesis_home_dir(HYPOTHESIS_HOME)
EXAMPLE_DATABASE = None if IN_CI else DirectoryBasedExampleDatabase(HYPOTHESIS_HOME / "examples")

FAILING = """
id: contract
namespace: tests
labels:
  team: data
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}!"
  - id: broken
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken on purpose
"""

PAUSING = """
id: approval
namespace: tests
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT1H
    onResume:
      - id: reason
        type: STRING
"""


@dataclass(frozen=True)
class RealObjects:
    token: str
    # path parameter name → values of it that name something that exists
    path_values: dict[str, list[str]]


@pytest.fixture(scope="module")
def real_objects(cluster, django_db_blocker) -> Iterator[RealObjects]:
    """A namespace of this module's own with a FAILED and a PAUSED execution (run by the real
    executor and worker) and a KV entry, and a staff user's token; removed afterwards."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from orchestrator.kv import KVStore
    from orchestrator.models import Execution, Flow, FlowRevision, LogEntry, TaskRun
    from orchestrator.repository import create_execution, deploy

    namespace = f"tests.contract{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        user = get_user_model().objects.create_user(f"contract-{namespace}", is_staff=True)
        token = Token.objects.create(user=user)
        for source in (FAILING, PAUSING):
            deploy(with_namespace(source, namespace))
        KVStore(namespace).put("greeting", "hello")
        failed = create_execution(namespace, "contract")
        paused = create_execution(namespace, "approval")
        wait_for(lambda: finished(failed.id, expect_logs=1), 60, f"execution {failed.id} to end")
        wait_for(lambda: Execution.objects.get(id=paused.id).state == "PAUSED", 60, f"execution {paused.id} to pause")
    yield RealObjects(token=token.key, path_values={
        "namespace": [namespace], "flow_id": ["contract", "approval"], "execution_id": [failed.id, paused.id],
        "key": ["greeting"], "cls": ["io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.flow.Pause"],
    })
    with django_db_blocker.unblock():
        executions = Execution.objects.filter(namespace=namespace)
        LogEntry.objects.filter(execution_id__in=executions.values("id")).delete()
        TaskRun.objects.filter(execution_id__in=executions.values("id")).delete()
        executions.delete()
        FlowRevision.objects.filter(namespace=namespace).delete()
        Flow.objects.filter(namespace=namespace).delete()
        KVStore(namespace).delete("greeting")
        user.delete()


def contract_config(real: RealObjects) -> SchemathesisConfig:
    """Requests with the token; path parameters naming real objects 7 times in 10; the checks of
    the contract: no 500, and status code, content type and body as documented."""
    return SchemathesisConfig.from_dict({
        "headers": {"Authorization": f"Bearer {real.token}"},
        "dictionaries": {name: {"values": values} for name, values in real.path_values.items()},
        "parameters": {f"path.{name}": {"dictionary": name, "probability": 0.7} for name in real.path_values},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    })


@pytest.fixture(scope="module")
def api_schema(real_objects, django_db_blocker):
    """The document as the server serves it, read with the token."""
    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi(
            "/api/v1/openapi.json", get_wsgi_application(), config=contract_config(real_objects),
            headers={"Authorization": f"Bearer {real_objects.token}"},
        )


@pytest.fixture
def one_connection():
    """Requests share the test's connection and its transaction, as Django's test client has them
    do: a WSGI request otherwise closes a connection found inside a transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@contextmanager
def rolled_back() -> Iterator[None]:
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def streams_events(operation) -> bool:
    """Server-sent events (following an execution or its logs) are left out: a stream hands its
    database connection back after each read, which here is the test's own and would end the
    transaction every other request runs in. tests/integration/test_api_follow.py covers them."""
    return any("text/event-stream" in (response.get("content") or {})
               for response in operation.definition.raw.get("responses", {}).values())


def malformable(operation) -> bool:
    """Whether a request to the operation can be made invalid. Without a body or a query, and
    with plain strings in the path, there is nothing to break (any string is a name): schemathesis
    would search in vain until hypothesis gives up."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(parameter["in"] != "path" or parameter.get("schema") != {"type": "string"}
                                       for parameter in raw.get("parameters", []))


def described(error: BaseException) -> str:
    """What went wrong; for a failure hypothesis could not repeat, also what that failure was."""
    if isinstance(error, FlakyFailure):
        return "\n".join([str(error), *map(described, error.exceptions)])
    return str(error) or repr(error)


def failures_of(operation) -> list[str]:
    """Call one operation with generated requests, valid ones then malformed ones; answer what
    schemathesis reports."""
    failures: list[str] = []
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if malformable(operation) else [GenerationMode.POSITIVE]
    for mode in modes:
        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                             derandomize=IN_CI, database=EXAMPLE_DATABASE)
        def call(case):
            with rolled_back():
                case.call_and_validate()

        try:
            call()
        except Unsatisfiable:  # nothing to break after all, though malformable() could not tell
            continue
        # schemathesis raises its findings as a BaseExceptionGroup; each operation's are collected
        # and all are reported together.
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001
            failures.append(f"{operation.label} ({mode.value}):\n{described(error)}")
    return failures


def test_every_operation_answers_as_its_document_says(api_schema, one_connection, settings):
    # Nothing runs the executions created here (their transaction is rolled back): `wait=true`
    # answers at once rather than after its long default.
    settings.HARRIER_API_WAIT_SECONDS = 0.1
    failures = []
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes wrongly
            failures.append(str(result.err()))
        elif not streams_events(result.ok()):
            failures += failures_of(result.ok())
    assert not failures, "\n\n".join(failures)
