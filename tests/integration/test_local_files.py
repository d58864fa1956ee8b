"""`flow run --input name=@path`: a local file uploaded as a FILE input, with no external service."""

from __future__ import annotations

import json

from tests.integration.test_local import flow_run

FLOW = """
id: upload
namespace: tests
inputs:
  - id: data
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.data) | trim }} ({{ fileSize(inputs.data) }} bytes)"
  - id: lines
    type: io.kestra.plugin.core.storage.Split
    from: "{{ inputs.data }}"
    rows: 1
"""


def test_flow_run_uploads_a_local_file_for_a_file_input(tmp_path):
    local = tmp_path / "names.txt"
    local.write_text("ada\ngrace\n")
    completed = flow_run(tmp_path, FLOW, "--input", f"data=@{local}", "--json")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    document = json.loads(completed.stdout)
    uri = f"kestra:///tests/upload/executions/{document['id']}/inputs/data/names.txt"
    assert document["inputs"]["data"] == uri
    runs = {run["taskId"]: run for run in document["taskRunList"]}
    assert runs["show"]["outputs"] == {"value": "ada\ngrace (10 bytes)"}
    assert len(runs["lines"]["outputs"]["uris"]) == 2
    stored = tmp_path / "home" / "storage" / "tests" / "upload" / "executions" / document["id"] / "inputs" / "data"
    assert (stored / "names.txt").read_text() == "ada\ngrace\n"


def test_flow_run_names_a_missing_local_file_and_a_missing_uri(tmp_path):
    completed = flow_run(tmp_path, FLOW, "--input", f"data=@{tmp_path / 'nope.txt'}")
    assert completed.returncode != 0
    assert f"--input data=@{tmp_path / 'nope.txt'}: no such file" in completed.stderr
    assert "Traceback" not in completed.stderr
    completed = flow_run(tmp_path, FLOW, "--input", "data=kestra:///tests/_files/absent.txt")
    assert completed.returncode != 0
    assert "input `data`: kestra:///tests/_files/absent.txt: no such file in the internal storage" in completed.stderr
