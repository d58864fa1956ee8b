"""Namespace grants over HTTP: a user who is not staff reads, changes and runs only what the
grants of their groups allow, in a namespace and those under it; lists are filtered, and an
execution of a namespace one may not read is answered as missing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orchestrator.models import Execution, Flow, NamespaceGrant
from tests.harness import wait_for, with_namespace

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

YAML = "application/x-yaml"
FLOW = """
id: hello
namespace: tests
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT1H
"""


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("boss", is_staff=True)
    return _client(user)


@pytest.fixture
def member(django_user_model):
    """A user who is not staff, in group `team`, and a function to grant that group rights."""
    user = django_user_model.objects.create_user("alice")
    group = Group.objects.create(name="team")
    user.groups.add(group)
    client = _client(user)

    def grant(namespace: str, **rights: bool) -> APIClient:
        NamespaceGrant.objects.create(group=group, namespace=namespace, **rights)
        return client

    client.grant = grant
    return client


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    return client


def deploy(client, namespace: str, flow_id: str = "hello"):
    source = with_namespace(FLOW, namespace).replace("id: hello", f"id: {flow_id}")
    return client.post("/api/v1/flows", source, content_type=YAML)


def refusal(response, status: int = 403) -> str:
    assert response.status_code == status, response.content
    return response.json()["message"]


def test_read_shows_a_namespace_and_those_under_it_and_nothing_else(staff, member, namespace):
    for where in (namespace, f"{namespace}.team", f"{namespace}x", "other.place"):
        assert deploy(staff, where).status_code == 200
    member.grant(namespace, read=True)

    found = member.get(f"/api/v1/flows/search?q={namespace}&size=50").json()
    assert sorted(flow["namespace"] for flow in found["results"]) == [namespace, f"{namespace}.team"]
    assert found["total"] == 2
    assert member.get(f"/api/v1/flows/{namespace}.team/hello").status_code == 200
    assert member.get(f"/api/v1/flows/{namespace}/hello/revisions").status_code == 200
    assert refusal(member.get(f"/api/v1/flows/{namespace}x/hello")) == (
        f"alice may not read in namespace '{namespace}x': no namespace grant of their groups gives read there")
    assert member.get("/api/v1/flows/other.place").status_code == 403


def test_read_alone_changes_nothing_and_runs_nothing(staff, member, namespace):
    deploy(staff, namespace)
    member.grant(namespace, read=True)
    source = with_namespace(FLOW, namespace) + "description: changed\n"

    message = refusal(member.put(f"/api/v1/flows/{namespace}/hello", source, content_type=YAML))
    assert message == (f"alice may not change flows or namespace data in namespace '{namespace}': "
                       "no namespace grant of their groups gives write there")
    assert "write there" in refusal(deploy(member, namespace, "another"))
    assert "write there" in refusal(member.delete(f"/api/v1/flows/{namespace}/hello"))
    assert "execute there" in refusal(member.post(f"/api/v1/executions/{namespace}/hello"))
    flow = Flow.objects.get(namespace=namespace, flow_id="hello")
    assert (flow.revision, flow.deleted) == (1, False)
    assert not Flow.objects.filter(flow_id="another").exists()
    assert not Execution.objects.filter(namespace=namespace).exists()
    # Validating stores nothing: anyone signed in may.
    assert member.post("/api/v1/flows/validate", source, content_type=YAML).json()[0]["constraints"] is None


def test_write_creates_updates_and_deletes_flows_of_its_namespaces_only(member, namespace):
    member.grant(f"{namespace}.team", write=True)
    assert deploy(member, f"{namespace}.team").json()["revision"] == 1
    source = with_namespace(FLOW, f"{namespace}.team") + "description: changed\n"
    assert member.put(f"/api/v1/flows/{namespace}.team/hello", source, content_type=YAML).json()["revision"] == 2
    assert member.get(f"/api/v1/flows/{namespace}.team/hello").status_code == 200  # write includes read
    assert member.delete(f"/api/v1/flows/{namespace}.team/hello").status_code == 204
    # A grant on a sub-namespace gives nothing on its parent.
    assert f"namespace '{namespace}'" in refusal(deploy(member, namespace))
    assert "execute there" in refusal(member.post(f"/api/v1/executions/{namespace}.team/hello"))


def test_execute_runs_and_acts_on_executions_of_its_namespaces(cluster, staff, member, namespace):
    deploy(staff, namespace)
    deploy(staff, f"{namespace}x")
    member.grant(namespace, execute=True)
    own = member.post(f"/api/v1/executions/{namespace}/hello").json()
    other = staff.post(f"/api/v1/executions/{namespace}x/hello").json()
    for execution in (own, other):
        wait_for(lambda e=execution: Execution.objects.get(id=e["id"]).state == "PAUSED", 30, "the pause")

    found = member.get(f"/api/v1/executions/search?namespace={namespace}").json()
    assert [row["id"] for row in found["results"]] == [own["id"]]
    assert member.get(f"/api/v1/executions/{own['id']}").status_code == 200
    assert member.get(f"/api/v1/logs/{own['id']}").status_code == 200
    # Another namespace's execution is answered as if it did not exist, whatever is asked of it.
    missing = f"execution {other['id']} does not exist"
    for response in (member.get(f"/api/v1/executions/{other['id']}"), member.get(f"/api/v1/logs/{other['id']}"),
                     member.delete(f"/api/v1/executions/{other['id']}/kill"),
                     member.post(f"/api/v1/executions/{other['id']}/resume")):
        assert refusal(response, 404) == missing
    assert Execution.objects.get(id=other["id"]).state == "PAUSED"

    assert member.delete(f"/api/v1/executions/{own['id']}/kill").status_code == 202
    wait_for(lambda: Execution.objects.get(id=own["id"]).state == "KILLED", 30, "the kill")
    assert member.delete(f"/api/v1/executions/{own['id']}").status_code == 204


def test_read_without_execute_sees_an_execution_but_cannot_act_on_it(cluster, staff, member, namespace):
    deploy(staff, namespace)
    member.grant(namespace, read=True)
    execution = staff.post(f"/api/v1/executions/{namespace}/hello").json()
    assert member.get(f"/api/v1/executions/{execution['id']}").status_code == 200
    message = refusal(member.delete(f"/api/v1/executions/{execution['id']}/kill"))
    assert message == (f"alice may not run or act on executions in namespace '{namespace}': "
                       "no namespace grant of their groups gives execute there")
    assert "execute there" in refusal(member.post(f"/api/v1/executions/{execution['id']}/restart"))
    assert "execute there" in refusal(member.delete(f"/api/v1/executions/{execution['id']}"))
    assert Execution.objects.filter(id=execution["id"]).exists()


def test_a_user_who_leaves_the_group_loses_its_rights(member, namespace, django_user_model):
    member.grant(namespace, write=True)
    assert deploy(member, namespace).status_code == 200
    django_user_model.objects.get(username="alice").groups.clear()
    assert member.get(f"/api/v1/flows/search?namespace={namespace}").json()["total"] == 0
    assert member.get(f"/api/v1/flows/{namespace}/hello").status_code == 403
