"""Files in and out of a script task's working directory, through Harrier's internal storage
(orchestrator/storage).

In: `inputFiles` values that are `kestra:///…` URIs, `kestra:///…` URIs written in the commands
(downloaded, and replaced by the local file's path, as Kestra does), and namespace files. Out:
the files `outputFiles` globs match, and everything left in `{{ outputDir }}`, stored under the
task run's own prefix. A task reads only its own execution's files and its namespace's files.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from workers.context import RunContext, TaskFailure

# As Kestra finds them in commands; a URI does not end with a dot (the end of a sentence).
STORAGE_URI = re.compile(r"kestra:///[-A-Za-z0-9%._+~=/]*[-A-Za-z0-9%_+~=]")


def _download(ctx: RunContext, uri: str, target: Path, what: str) -> None:
    from orchestrator.storage import StorageError, check_scope, get_storage

    storage = get_storage()
    job = ctx.job
    try:
        location = check_scope(uri, job["namespace"], job["flowId"], job["executionId"])
        target.parent.mkdir(parents=True, exist_ok=True)
        storage.download(location, target)
    except (StorageError, FileNotFoundError) as error:
        raise TaskFailure(f"{what}: {error}") from None


def write_input_file(ctx: RunContext, work: Path, name: PurePosixPath, content: str) -> None:
    target = work / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if content.startswith("kestra://") and "\n" not in content.strip():
        _download(ctx, content.strip(), target, f"inputFiles[{name}]")
        return
    target.write_text(content, encoding="utf-8")


def localize_uris(ctx: RunContext, text: str, downloads: Path) -> str:
    """`text` (a command, a script) with each `kestra:///…` URI replaced by the path of a local
    copy, in a directory beside the working directory."""

    def replace(match: re.Match) -> str:
        uri = match.group(0)
        target = downloads / str(sum(1 for _ in downloads.iterdir())) / unquote(uri.rsplit("/", 1)[-1])
        _download(ctx, uri, target, "commands")
        return str(target)

    return STORAGE_URI.sub(replace, text)


def glob_pattern(glob: str) -> re.Pattern:
    """A path glob as a regular expression: `*` and `?` stay within a directory, `**` crosses them."""
    parts, index = [], 0
    while index < len(glob):
        if glob.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif glob.startswith("**", index):
            parts.append(".*")
            index += 2
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def copy_namespace_files(ctx: RunContext, options: dict[str, Any], work: Path) -> None:
    """Kestra's `namespaceFiles`: the namespace's files (filtered by `include` and `exclude`
    globs) copied into the working directory under their own paths."""
    from orchestrator.storage import StorageError, get_storage, namespace_files_prefix

    storage = get_storage()
    namespaces = options.get("namespaces") or [ctx.job["namespace"]]
    include = [glob_pattern(str(glob)) for glob in options.get("include") or []]
    exclude = [glob_pattern(str(glob)) for glob in options.get("exclude") or []]
    if_exists = str(options.get("ifExists") or "OVERWRITE").upper()
    for namespace in namespaces:
        if namespace != ctx.job["namespace"]:
            raise TaskFailure(f"namespaceFiles: a task reads only its own namespace's files, not {namespace}'s")
        prefix = namespace_files_prefix(namespace)
        try:
            files = storage.list(prefix)
        except StorageError as error:
            raise TaskFailure(f"namespaceFiles: {error}") from None
        for stored in files:
            relative = stored.uri[len(prefix):]
            path = "/".join(unquote(part) for part in relative.split("/"))
            if include and not any(p.match(path) for p in include):
                continue
            if any(p.match(path) for p in exclude):
                continue
            target = work / path
            if target.exists():
                if if_exists == "FAIL":
                    raise TaskFailure(f"namespaceFiles: {path} already exists in the working directory")
                if if_exists == "SKIP":
                    continue
            _download(ctx, stored.uri, target, "namespaceFiles")


def collect_output_files(space, globs: list[str], hidden: frozenset[str]) -> dict[str, Path]:
    """The files that `outputFiles` globs match in the working directory, and every file left in
    the output directory, by their relative path."""
    found: dict[str, Path] = {}
    if globs:
        patterns = [glob_pattern(glob) for glob in globs]
        for path in sorted(space.work.rglob("*")):
            relative = path.relative_to(space.work).as_posix()
            if relative in hidden or not path.is_file() or path.is_symlink():
                continue
            if any(pattern.match(relative) for pattern in patterns):
                found[relative] = path
    for path in sorted(space.output.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found.setdefault(path.relative_to(space.output).as_posix(), path)
    return found


def store_output_files(ctx: RunContext, files: dict[str, Path]) -> dict[str, str]:
    """Each file put in internal storage under the task run's prefix: its name → its URI."""
    if not files:
        return {}
    from orchestrator.storage import StorageError, StorageURI, get_storage, parse_uri, task_file_uri

    storage = get_storage()
    job = ctx.job
    stored = {}
    try:
        for name, path in files.items():
            parts = name.split("/")
            first = parse_uri(task_file_uri(job["namespace"], job["flowId"], job["executionId"], job["task"]["id"],
                                            job["taskRunId"], parts[0]))
            location = StorageURI.from_segments((*first.segments, *parts[1:]), what=name)
            storage.put(location, path)
            stored[name] = location.uri
    except StorageError as error:
        raise TaskFailure(f"outputFiles: {error}") from None
    return stored
