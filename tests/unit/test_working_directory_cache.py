"""A WorkingDirectory's `cache`: files kept in a local storage of the test's own and put back
into a directory until their time to live has passed."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.storage import get_storage
from workers.context import RunContext, TaskFailure
from workers.working_directory_cache import CacheSettings, cache_location, restore, save

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def storage(local_storage):
    return local_storage


def context(value: str | None = None) -> tuple[RunContext, list[str]]:
    logs: list[str] = []
    job = {"v": 1, "executionId": "E1", "taskRunId": "R1", "attempt": 1, "namespace": "company.team",
           "flowId": "etl", "task": {"id": "wd", "type": "io.kestra.plugin.core.flow.WorkingDirectory"},
           "context": {"taskrun": {"id": "R1", "value": value}}}
    ctx = RunContext(job, lambda batch: logs.extend(record["message"] for record in batch))
    return ctx, logs


def messages_of(ctx: RunContext, logs: list[str]) -> list[str]:
    ctx.flush_logs()
    return logs


def test_matching_files_are_kept_and_restored_until_the_ttl_passes(tmp_path):
    settings = CacheSettings({"patterns": ["deps/**", "*.lock"], "ttl": "PT1H"})
    first = tmp_path / "first"
    (first / "deps" / "pkg").mkdir(parents=True)
    (first / "deps" / "pkg" / "mod.py").write_text("x = 1")
    (first / "app.lock").write_text("locked")
    (first / "out.txt").write_text("not cached")
    ctx, logs = context()
    assert restore(ctx, settings, first, NOW) is False
    save(ctx, settings, first, NOW)
    assert "Cached 2 file(s) for 1:00:00" in messages_of(ctx, logs)

    second = tmp_path / "second"
    second.mkdir()
    assert restore(ctx, settings, second, NOW + timedelta(minutes=59)) is True
    assert sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file()) == \
        ["app.lock", "deps/pkg/mod.py"]
    assert (second / "deps" / "pkg" / "mod.py").read_text() == "x = 1"

    third = tmp_path / "third"
    third.mkdir()
    assert restore(ctx, settings, third, NOW + timedelta(hours=1)) is False
    assert list(third.iterdir()) == []
    assert "The cache has expired" in messages_of(ctx, logs)[-1]


def test_without_ttl_the_cache_never_expires(tmp_path):
    settings = CacheSettings({"patterns": ["*.txt"]})
    (tmp_path / "a.txt").write_text("a")
    ctx, _ = context()
    save(ctx, settings, tmp_path, NOW)
    target = tmp_path / "later"
    target.mkdir()
    assert restore(ctx, settings, target, NOW + timedelta(days=3650)) is True


def test_each_loop_value_has_its_own_cache():
    assert cache_location(context("a")[0]) != cache_location(context("b")[0]) != cache_location(context()[0])
    assert cache_location(context()[0]) == "kestra:///company/team/etl/_cache/wd/cache.zip"


def test_an_archive_reaching_outside_the_directory_is_not_restored(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = NOW.isoformat().encode()
        archive.writestr("ok.txt", "fine")
        archive.writestr("../escape.txt", "evil")
    ctx, logs = context()
    get_storage().put(cache_location(ctx), buffer.getvalue())
    target = tmp_path / "dir"
    target.mkdir()
    assert restore(ctx, CacheSettings({"patterns": ["*"]}), target, NOW) is False
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.txt").exists()
    assert "outside the directory" in messages_of(ctx, logs)[-1]


def test_a_damaged_archive_is_not_restored(tmp_path):
    ctx, logs = context()
    get_storage().put(cache_location(ctx), b"not a zip")
    assert restore(ctx, CacheSettings({"patterns": ["*"]}), tmp_path, NOW) is False
    assert "could not be restored" in messages_of(ctx, logs)[-1]


@pytest.mark.parametrize("definition, message", [
    ({"ttl": "PT1H"}, "cache.patterns"),
    ({"patterns": []}, "cache.patterns"),
    ({"patterns": ["*"], "ttl": "soon"}, "cache.ttl"),
    ("*.txt", "`cache` must be a map"),
])
def test_a_bad_cache_property_is_refused_with_the_reason(definition, message):
    with pytest.raises(TaskFailure, match=message):
        CacheSettings(definition)
