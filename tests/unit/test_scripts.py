"""Script tasks without the cluster: the `::{}::` line protocol, the process environment, the
SDK's lines, and the process runner on real (short) processes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workers.context import TaskFailure
from workers.process import read_lines, run_process
from workers.sdk.kestra import Kestra
from workers.tasktypes.scripts_common import Workspace, as_list, build_env, relative_path
from workers.tasktypes.scripts_protocol import parse_line


# --- the ::{...}:: lines -------------------------------------------------------------------

def test_a_plain_line_is_not_a_message():
    assert parse_line("hello") is None
    assert parse_line(":: not json ::") is None
    assert parse_line('echo ::{"outputs":{}}::') is None


def test_outputs_metrics_and_logs_are_read():
    line = ('::{"outputs":{"a":1,"b":{"c":[true]}},"metrics":[{"name":"rows","type":"counter","value":3,'
            '"tags":{"t":"x","n":2}},{"name":"load","type":"timer","value":1.5}],'
            '"logs":[{"level":"warning","message":"careful"},{"level":"ERROR","message":"bad"}]}::')
    message = parse_line(line)
    assert message.outputs == {"a": 1, "b": {"c": [True]}}
    assert message.metrics == [{"name": "rows", "type": "counter", "value": 3, "tags": {"t": "x", "n": "2"}},
                               {"name": "load", "type": "timer", "value": 1.5, "tags": {}}]
    assert message.logs == [("WARN", "careful"), ("ERROR", "bad")]
    assert message.problems == []


def test_a_trailing_carriage_return_or_space_is_tolerated():
    assert parse_line('::{"outputs":{"a":1}}::\r').outputs == {"a": 1}


@pytest.mark.parametrize("line, problem", [
    ('::{"outputs": nope}::', "Invalid outputs line"),
    ('::{"outputs": [1]}::', "`outputs` must be an object"),
    ('::{"metrics": {"name": "x"}}::', "`metrics` must be a list"),
    ('::{"metrics": [{"name": "x", "type": "histogram", "value": 1}]}::', "`type` must be one of"),
    ('::{"metrics": [{"name": "x", "type": "counter", "value": "3"}]}::', "finite number"),
    ('::{"metrics": [{"type": "counter", "value": 3}]}::', "non-empty `name`"),
    ('::{"logs": [{"level": "INFO"}]}::', "expected {level, message}"),
    ('::{"output": {"a": 1}}::', "Unknown keys ['output']"),
])
def test_a_bad_message_says_what_is_wrong(line, problem):
    message = parse_line(line)
    assert any(problem in text for text in message.problems), message.problems


def test_the_good_parts_of_a_partly_bad_message_are_kept():
    message = parse_line('::{"outputs":{"a":1},"metrics":[{"name":"ok","type":"gauge","value":2},{"name":"x"}]}::')
    assert message.outputs == {"a": 1}
    assert [metric["name"] for metric in message.metrics] == ["ok"]
    assert len(message.problems) == 1


def test_an_unknown_log_level_logs_at_info():
    assert parse_line('::{"logs":[{"level":"LOUD","message":{"k":1}}]}::').logs == [("INFO", '{"k": 1}')]


# --- the SDK writes what the parser reads ----------------------------------------------------

def _sdk_lines(action, capsys) -> list:
    action()
    return [parse_line(line) for line in capsys.readouterr().out.splitlines()]


def test_the_sdk_speaks_the_protocol(capsys):
    def emit():
        Kestra.outputs({"when": __import__("datetime").date(2024, 1, 2), "text": "a\u2028b"})
        Kestra.counter("rows", 3, {"table": "orders"})
        Kestra.gauge("size", 1.5)
        assert Kestra.timer("load", lambda: "done") == "done"
        Kestra.logger().warning("careful %s", "now")
        Kestra.logger().debug("detail")

    messages = _sdk_lines(emit, capsys)
    assert messages[0].outputs == {"when": "2024-01-02", "text": "a\u2028b"}
    assert messages[1].metrics == [{"name": "rows", "type": "counter", "value": 3, "tags": {"table": "orders"}}]
    assert messages[2].metrics[0]["type"] == "gauge"
    assert messages[3].metrics[0]["name"] == "load" and messages[3].metrics[0]["value"] >= 0
    assert messages[4].logs == [("WARN", "careful now")]
    assert messages[5].logs == [("DEBUG", "detail")]
    assert all(not message.problems for message in messages)


def test_the_sdk_refuses_what_the_protocol_cannot_carry():
    with pytest.raises(ValueError):
        Kestra.counter("rows", float("nan"))
    with pytest.raises(TypeError):
        Kestra.outputs({"x": object()})
    with pytest.raises(TypeError):
        Kestra.outputs(["not", "a", "map"])


# --- the environment -------------------------------------------------------------------------

@pytest.fixture
def space(tmp_path):
    root = tmp_path / "task"
    return Workspace(root=root, work=root / "work", output=root / "output", home=root / "home", tmp=root / "tmp")


WORKER_ENV = {"PATH": "/opt/bin:/usr/bin", "LANG": "en_US.UTF-8", "SECRET_API_TOKEN": "c2VjcmV0",
              "DATABASE_URL": "postgres://x", "CELERY_BROKER_URL": "redis://y", "ENV_REGION": "eu", "USER": "w"}


def test_the_worker_environment_does_not_leak(space):
    env = build_env({}, space, base=WORKER_ENV)
    assert env == {
        "PATH": "/opt/bin:/usr/bin", "LANG": "en_US.UTF-8", "HOME": str(space.home),
        "TMPDIR": str(space.tmp), "TMP": str(space.tmp), "TEMP": str(space.tmp),
        "WORKING_DIR": str(space.work), "OUTPUT_DIR": str(space.output),
    }


def test_defaults_when_the_worker_has_no_path_or_lang(space):
    env = build_env({}, space, base={})
    assert env["PATH"].endswith("/usr/bin:/sbin:/bin") and env["LANG"] == "C.UTF-8"


def test_the_flows_env_is_added_and_wins(space):
    env = build_env({"API": "x", "PORT": 8080, "DEBUG": True, "OPTS": {"a": [1]}, "EMPTY": None,
                     "HOME": "/custom"}, space, base=WORKER_ENV)
    assert env["API"] == "x" and env["PORT"] == "8080" and env["DEBUG"] == "true"
    assert env["OPTS"] == '{"a":[1]}' and env["EMPTY"] == "" and env["HOME"] == "/custom"


def test_python_tasks_keep_the_sdk_on_pythonpath_and_their_interpreter_first(space):
    env = build_env({"PYTHONPATH": "/mine"}, space, base=WORKER_ENV, extra={"PYTHONPATH": "/sdk"},
                    path_prefix="/venv/bin")
    assert env["PYTHONPATH"] == "/mine:/sdk"
    assert env["PATH"] == "/venv/bin:/opt/bin:/usr/bin"


@pytest.mark.parametrize("env", [{"A=B": "x"}, {"": "x"}, {"A": "x\0y"}])
def test_an_impossible_variable_fails_the_task_by_name(space, env):
    with pytest.raises(TaskFailure, match="env"):
        build_env(env, space, base={})


@pytest.mark.parametrize("name", ["/etc/passwd", "../up.txt", "a/../../b", ""])
def test_files_stay_inside_the_working_directory(name):
    with pytest.raises(TaskFailure, match="relative path"):
        relative_path(name, "inputFiles")


def test_list_properties_accept_one_string_or_a_json_array():
    assert as_list("echo hi", "commands") == ["echo hi"]
    assert as_list('["a", "b"]', "commands") == ["a", "b"]
    assert as_list(["a", 1, True], "commands") == ["a", "1", "true"]
    assert as_list(None, "commands") == []


# --- reading lines ---------------------------------------------------------------------------

def test_lines_are_bounded_and_the_rest_of_a_long_line_is_dropped():
    data = b"short\r\n" + b"x" * 25 + b"\nafter\nlast"
    lines = list(read_lines(io.BytesIO(data), limit=10))
    assert lines == ["short", "x" * 10 + " [… 15 more bytes cut]", "after", "last"]


def test_invalid_utf8_is_replaced_not_fatal():
    assert list(read_lines(io.BytesIO(b"caf\xe9\n"))) == ["caf\ufffd"]


# --- the process runner ----------------------------------------------------------------------

def _run(script: str, stop: threading.Event | None = None, **kwargs):
    lines: list[tuple[str, bool]] = []
    result = run_process(["/bin/sh", "-c", script], cwd="/", env={"PATH": "/usr/bin:/bin"},
                         on_line=lambda line, err: lines.append((line, err)), stop=stop or threading.Event(),
                         **kwargs)
    return result, lines


def test_both_pipes_are_read_and_the_exit_code_returned():
    # more than a pipe's buffer on stderr before stdout says anything: reading one pipe only would hang
    result, lines = _run("i=0; while [ $i -lt 3000 ]; do echo e$i >&2; i=$((i+1)); done; echo out; exit 7")
    assert result.exit_code == 7 and result.signal is None and not result.stopped
    assert ("out", False) in lines and ("e2999", True) in lines and len(lines) == 3001


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


def test_a_stop_terminates_the_whole_group(tmp_path):
    stop = threading.Event()
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; echo ready; wait"
    threading.Thread(target=lambda: (_wait_file(pids, 2), stop.set()), daemon=True).start()
    started = time.monotonic()
    result, lines = _run(script, stop)
    assert result.stopped and result.signal == 15 and result.exit_code == 143
    assert time.monotonic() - started < 5
    for pid in map(int, pids.read_text().split()):
        _wait_gone(pid)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    stop = threading.Event()
    ready = tmp_path / "ready"
    threading.Thread(target=lambda: (_wait_file(ready, 1), stop.set()), daemon=True).start()
    result, _ = _run(f"trap '' TERM; echo $$ > {ready}; while :; do sleep 0.05; done", stop, kill_grace=0.3)
    assert result.stopped and result.signal == 9
    _wait_gone(int(ready.read_text()))


def test_what_the_leader_leaves_behind_is_killed_when_it_ends(tmp_path):
    pid_file = tmp_path / "child"
    result, _ = _run(f"sleep 60 & echo $! > {pid_file}; exit 0")
    assert result.exit_code == 0
    _wait_gone(int(pid_file.read_text()))


def test_a_missing_interpreter_is_a_clear_start_error():
    from workers.process import ProcessStartError

    with pytest.raises(ProcessStartError, match="cannot start '/no/such/shell'"):
        run_process(["/no/such/shell", "-c", "true"], cwd="/", env={}, on_line=lambda *a: None,
                    stop=threading.Event())


def test_lines_arrive_while_the_process_runs(tmp_path):
    go = tmp_path / "go"
    seen = threading.Event()
    result_box = []

    def on_line(line, err):
        if line == "first":
            seen.set()

    def run():
        result_box.append(run_process(["/bin/sh", "-c", f"echo first; while [ ! -f {go} ]; do sleep 0.02; done"],
                                      cwd="/", env={"PATH": "/usr/bin:/bin"}, on_line=on_line,
                                      stop=threading.Event()))

    runner = threading.Thread(target=run)
    runner.start()
    assert seen.wait(10), "the first line did not arrive while the process ran"
    assert not result_box
    go.write_text("")
    runner.join(10)
    assert result_box[0].exit_code == 0


def _wait_file(path: Path, lines: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().split()) >= lines):
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def test_the_sdk_runs_in_a_plain_interpreter():
    sdk = Path(__file__).resolve().parents[2] / "workers" / "sdk"
    out = subprocess.run([sys.executable, "-c", "from kestra import Kestra; Kestra.outputs({'a': 1})"],
                         env={"PYTHONPATH": str(sdk)}, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip()[2:-2]) == {"outputs": {"a": 1}}


# --- files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("glob, path, matches", [
    ("*.csv", "data.csv", True), ("*.csv", "sub/data.csv", False), ("**/*.csv", "data.csv", True),
    ("**/*.csv", "a/b/data.csv", True), ("reports/**", "reports/x/y.txt", True), ("?.txt", "a.txt", True),
    ("?.txt", "ab.txt", False), ("data.csv", "data.csv", True), ("data.csv", "data.csvx", False),
    ("a+b[1].txt", "a+b[1].txt", True),
])
def test_output_globs_match_as_kestra_globs_do(glob, path, matches):
    from workers.tasktypes.scripts_files import glob_pattern

    assert bool(glob_pattern(glob).match(path)) is matches


def test_collected_files_skip_the_hidden_script_and_take_the_output_directory(tmp_path):
    from workers.tasktypes.scripts_files import collect_output_files

    root = tmp_path / "task"
    space = Workspace(root=root, work=root / "work", output=root / "output", home=root / "home", tmp=root / "tmp")
    for path in ("work/a.txt", "work/script_x.py", "work/sub/b.txt", "output/c.txt"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    found = collect_output_files(space, ["**/*"], frozenset({"script_x.py"}))
    assert sorted(found) == ["a.txt", "c.txt", "sub/b.txt"]


def test_a_failing_tick_does_not_stop_the_process(tmp_path):
    go = tmp_path / "go"
    ticks = []

    def tick():
        ticks.append(1)
        go.write_text("")
        raise ConnectionError("broker down")

    result, lines = _run(f"while [ ! -f {go} ]; do sleep 0.02; done; echo survived", tick=tick)
    assert ticks and result.exit_code == 0 and ("survived", False) in lines
