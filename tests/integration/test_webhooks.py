"""Webhook triggers through Django's test client and real executor and worker processes."""

from __future__ import annotations

import json

import pytest

from tests.compat.test_kestra_cases import VALIDS
from tests.harness import finished, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def settled():
    """Leave no execution running for the tables' flush after the test (the executions a
    trigger started are not all awaited by the test itself)."""
    yield
    from orchestrator.models import Execution
    from orchestrator.states import TERMINAL

    terminal = [state.value for state in TERMINAL]
    wait_for(lambda: not Execution.objects.exclude(state__in=terminal).exists(), 60, "executions to settle")

FLOW = """
id: hook
namespace: tests.webhook
inputs:
  - id: who
    type: STRING
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.who }} {{ trigger.body.hello ?? '-' }} {{ trigger.parameters.page[0] ?? '-' }} {{ trigger.headers['x-token'][0] ?? '-' }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.value }}"
triggers:
  - id: call
    type: io.kestra.plugin.core.trigger.Webhook
    key: the-key-1234
    inputs:
      who: "{{ trigger.body.who ?? 'nobody' }}"
  - id: waiting
    type: io.kestra.plugin.core.trigger.Webhook
    key: wait-key-5678
    wait: true
    returnOutputs: true
    inputs:
      who: waiter
  - id: closed
    type: io.kestra.plugin.core.trigger.Webhook
    key: disabled-key-9
    disabled: true
"""


def url(namespace: str, flow_id: str, key: str) -> str:
    return f"/api/v1/executions/webhook/{namespace}/{flow_id}/{key}"


@pytest.fixture
def hook(namespace):
    from orchestrator.repository import deploy

    flow, _ = deploy(FLOW.replace("tests.webhook", namespace))
    return flow


def test_a_webhook_starts_an_execution_with_the_body_headers_and_parameters(cluster, client, hook):
    response = client.post(url(hook.namespace, "hook", "the-key-1234") + "?page=7",
                           data=json.dumps({"hello": "world", "who": "ada"}), content_type="application/json",
                           headers={"X-Token": "abc"})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["namespace"] == hook.namespace and answer["flowId"] == "hook"
    assert answer["trigger"]["type"] == "io.kestra.plugin.core.trigger.Webhook"
    execution = wait_for(lambda: finished(answer["id"]), 60, "the webhook's execution")
    assert execution.state == "SUCCESS"
    assert execution.outputs == {"greeting": "ada world 7 abc"}
    variables = execution.trigger["variables"]
    assert variables["body"] == {"hello": "world", "who": "ada"}
    assert variables["parameters"] == {"page": ["7"]}


def test_a_text_body_stays_text_and_get_and_put_work(cluster, client, hook):
    response = client.put(url(hook.namespace, "hook", "the-key-1234"), data="plain words",
                          content_type="text/plain")
    assert response.status_code == 200, response.content
    execution = wait_for(lambda: finished(response.json()["id"]), 60, "the webhook's execution")
    assert execution.trigger["variables"]["body"] == "plain words"
    assert execution.outputs == {"greeting": "nobody - - -"}
    assert client.get(url(hook.namespace, "hook", "the-key-1234")).status_code == 200


def test_wait_with_return_outputs_answers_the_outputs(cluster, client, hook):
    response = client.post(url(hook.namespace, "hook", "wait-key-5678"), data=json.dumps({"hello": "you"}),
                           content_type="application/json", headers={"X-Token": "t"})
    assert response.status_code == 200, response.content
    assert response.json() == {"greeting": "waiter you - t"}


def test_the_same_404_whatever_is_wrong(cluster, client, hook, namespace):
    from orchestrator.models import Execution
    from orchestrator.repository import deploy

    deploy(FLOW.replace("tests.webhook", namespace).replace("id: hook", "id: hook-off") + "disabled: true\n")
    wrong = [
        url(hook.namespace, "hook", "the-key-1235"),  # wrong key
        url(hook.namespace, "hook", "the-key-123"),  # a prefix of the key
        url(hook.namespace, "no-such-flow", "the-key-1234"),  # wrong flow
        url("no.such.namespace", "hook", "the-key-1234"),  # wrong namespace
        url(hook.namespace, "hook", "disabled-key-9"),  # disabled trigger
        url(namespace, "hook-off", "the-key-1234"),  # disabled flow
    ]
    answers = [client.post(path, data="{}", content_type="application/json") for path in wrong]
    assert {(answer.status_code, answer.content) for answer in answers} == {(404, answers[0].content)}
    assert not Execution.objects.exists()


def test_a_body_over_the_limit_is_refused(cluster, client, hook, monkeypatch):
    monkeypatch.setenv("HARRIER_WEBHOOK_MAX_BYTES", "100")
    response = client.post(url(hook.namespace, "hook", "the-key-1234"), data="x" * 101, content_type="text/plain")
    assert response.status_code == 413


def test_corpus_webhooks_dynamic_key_and_condition(cluster, client):
    from orchestrator.models import Execution
    from orchestrator.repository import deploy

    for name in ("webhook.yaml", "webhook-dynamic-key.yaml", "webhook-with-condition.yaml"):
        deploy((VALIDS / name).read_text(encoding="utf-8"))
    plain = client.post(url("io.kestra.tests", "webhook", "a-secret-key"), data=json.dumps({"a": 1}),
                        content_type="application/json")
    assert plain.status_code == 200
    execution = wait_for(lambda: finished(plain.json()["id"]), 60, "webhook.yaml")
    labels = {label["key"]: label["value"] for label in execution.labels}
    assert labels["flow-label-1"] == "flow-label-1"
    assert json.loads(execution.task_runs.get().outputs["value"])["body"] == {"a": 1}

    assert client.get(url("io.kestra.tests", "webhook-dynamic-key", "webhook-dynamic-key")).status_code == 200

    refused = client.post(url("io.kestra.tests", "webhook-with-condition", "webhookKey"),
                          data=json.dumps({"hello": "mars"}), content_type="application/json")
    assert refused.status_code == 404
    accepted = client.post(url("io.kestra.tests", "webhook-with-condition", "webhookKey"),
                           data=json.dumps({"hello": "world"}), content_type="application/json")
    assert accepted.status_code == 200
    assert Execution.objects.filter(flow_id="webhook-with-condition").count() == 1
