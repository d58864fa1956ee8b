"""Zip archives the API reads and writes: flows imported and exported as YAML files.

An uploaded archive is hostile. Before anything in it is used, every entry is checked: at most
MAX_ENTRIES of them, no name that could climb out of a directory or name a link, no entry
larger than its limit once inflated, and no more than MAX_TOTAL_BYTES inflated in all — counted
while inflating, never trusted from the sizes the archive declares. A zip bomb or a trick
refuses the whole archive, before anything is imported.
"""

from __future__ import annotations

import io
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from orchestrator.api.errors import bad_request, too_large

MAX_ENTRIES = 1000
MAX_TOTAL_BYTES = 50 * 1024 * 1024
# Zip files start with a local file header; a YAML file never does.
ZIP_MAGIC = b"PK\x03\x04"
# Exports are written to memory up to this size, then to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file of an archive: its name and its content, or why it cannot be used."""

    name: str
    data: bytes | None
    refused: str | None = None


def is_zip(name: str, head: bytes) -> bool:
    return name.lower().endswith(".zip") or head.startswith(ZIP_MAGIC)


def read_zip(stream: BinaryIO, max_entry_bytes: int) -> list[Entry]:
    """The files of the archive (directories left out). An entry over `max_entry_bytes` is
    refused alone; an unreadable archive, a hostile name or too much data refuses it all."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise bad_request("The file is not a readable zip archive") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise too_large(f"The archive holds {len(infos)} entries; at most {MAX_ENTRIES} are read")
        for info in infos:
            _check_name(info)
        budget = [MAX_TOTAL_BYTES]
        return [_read_entry(archive, info, max_entry_bytes, budget) for info in infos if not info.is_dir()]


def _check_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    problem = None
    if "\x00" in name or any(ord(c) < 32 for c in name):
        problem = "it contains a control character"
    elif name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        problem = "it is an absolute path"
    elif "\\" in name:
        problem = "it contains a backslash"
    elif any(part in (".", "..") for part in parts):
        problem = "it contains a '.' or '..' segment"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "it is a symbolic link"
    if problem:
        raise bad_request(f"The archive is refused: its entry {name[:200]!r} is not a plain relative file name "
                          f"({problem})", [{"path": name[:200], "message": problem, "line": None}])


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: list[int]) -> Entry:
    try:
        with archive.open(info) as member:
            data = member.read(min(limit, budget[0]) + 1)
    except RuntimeError:  # an encrypted entry
        return Entry(info.filename, None, "it is encrypted")
    except NotImplementedError:
        return Entry(info.filename, None, "its compression method is not supported")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        raise bad_request(f"The archive is damaged: its entry {info.filename!r} cannot be read") from None
    if len(data) > budget[0]:
        raise too_large(f"The archive inflates to more than {MAX_TOTAL_BYTES} bytes")
    budget[0] -= len(data)
    if len(data) > limit:
        return Entry(info.filename, None, f"it is larger than {limit} bytes")
    return Entry(info.filename, data)


def write_zip(files: Iterable[tuple[str, str | bytes]]) -> BinaryIO:
    """A zip archive of (name, content) files, text written as UTF-8, rewound for reading."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content.encode("utf-8") if isinstance(content, str) else content)
    spool.seek(0, io.SEEK_SET)
    return spool
