"""Internal storage in a local directory: `server local`'s default, and any shared volume.

The key of a URI is the file's path under the root. Every path is resolved (symbolic links
followed) and must stay inside the root; a write goes to a staging file first and is renamed
into place, so a reader never sees half a file. Directories that a deletion leaves empty are
removed, so an execution's deletion leaves no trace.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from orchestrator.storage.base import CHUNK_SIZE, CountingReader, Storage, StorageFileNotFound, StoredFile
from orchestrator.storage.uris import (
    InvalidStorageURI,
    StorageError,
    StorageURI,
    as_location,
    shown,
)

logger = logging.getLogger("harrier.storage")

# Files being written wait here, inside the root so that the final rename stays on one file
# system. No URI can name it: a namespace starts with a lowercase letter or a digit.
STAGING = ".staging"
# A concurrent deletion may remove a directory just created for a write; try again this often.
_PUT_ATTEMPTS = 5


class LocalStorage(Storage):
    kind = "local"

    def __init__(self, root: "str | os.PathLike[str]") -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._staging = self.root / STAGING

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # --- paths -------------------------------------------------------------------------------

    def _inside(self, path: Path, location: StorageURI) -> Path:
        """`path` resolved; refused when it leads outside the root (through a symbolic link)."""
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError):  # a loop of symbolic links
            raise InvalidStorageURI(f"{shown(location.uri)} is refused: its path cannot be resolved") from None
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise InvalidStorageURI(
                f"{shown(location.uri)} is refused: it resolves outside the storage directory "
                "(through a symbolic link)"
            )
        return resolved

    def _path(self, location: StorageURI) -> Path:
        """Where the file of `location` is, symbolic links resolved and checked."""
        if location.segments[0] == STAGING:
            raise InvalidStorageURI(f"{shown(location.uri)} is refused: '{STAGING}' is reserved")
        return self._inside(self.root.joinpath(*location.segments), location)

    def _entry(self, location: StorageURI) -> Path:
        """The directory entry of `location` itself: its parent resolved and checked, its last
        name not followed — so a write or a deletion replaces a link, never its target."""
        if location.segments[0] == STAGING:
            raise InvalidStorageURI(f"{shown(location.uri)} is refused: '{STAGING}' is reserved")
        parent = self._inside(self.root.joinpath(*location.segments[:-1]), location)
        return parent / location.name

    # --- writing -----------------------------------------------------------------------------

    def _put(self, location: StorageURI, stream: CountingReader, length: int) -> int:
        self._staging.mkdir(exist_ok=True)
        staged = self._staging / f"{uuid.uuid4().hex}.part"
        try:
            with open(staged, "xb") as target:
                while chunk := stream.read(CHUNK_SIZE):
                    target.write(chunk)
                target.flush()
                # The file is reported stored once this returns: it must survive a crash.
                os.fsync(target.fileno())
            self._move_into_place(staged, location)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return stream.count

    def _move_into_place(self, staged: Path, location: StorageURI) -> None:
        for attempt in range(_PUT_ATTEMPTS):
            entry = self._entry(location)
            try:
                entry.parent.mkdir(parents=True, exist_ok=True)
                # mkdir may have created directories: check again that they are where we think.
                entry = self._entry(location)
                if entry.is_dir() and not entry.is_symlink():
                    raise StorageError(f"{shown(location.uri)} cannot be written: a directory has that name")
                os.replace(staged, entry)
                return
            except FileNotFoundError:
                if attempt == _PUT_ATTEMPTS - 1:
                    raise
                continue  # a deletion pruned the directory in between
            except (NotADirectoryError, FileExistsError):
                raise StorageError(
                    f"{shown(location.uri)} cannot be written: a part of its path is a file, not a directory"
                ) from None

    # --- reading -----------------------------------------------------------------------------

    def get(self, uri: "StorageURI | str") -> BinaryIO:
        location = as_location(uri)
        path = self._path(location)
        try:
            # O_NONBLOCK so that a FIFO cannot hold the open; only regular files are served.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise StorageFileNotFound(f"{shown(location.uri)}: no such file in the storage") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageFileNotFound(f"{shown(location.uri)}: no such file in the storage (not a regular file)")
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb", buffering=CHUNK_SIZE)
        except BaseException:
            os.close(fd)
            raise

    def _stat(self, location: StorageURI) -> os.stat_result | None:
        try:
            result = os.stat(self._path(location))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return result if stat.S_ISREG(result.st_mode) else None

    def exists(self, uri: "StorageURI | str") -> bool:
        return self._stat(as_location(uri)) is not None

    def size(self, uri: "StorageURI | str") -> int:
        location = as_location(uri)
        result = self._stat(location)
        if result is None:
            raise StorageFileNotFound(f"{shown(location.uri)}: no such file in the storage")
        return result.st_size

    def _walk(self, prefix: StorageURI):
        """(location, lstat) of every regular file under `prefix`; links are not followed."""
        base = self._path(prefix)
        if not base.is_dir():
            return
        for directory, _dirs, files in os.walk(base, followlinks=False):
            relative = Path(directory).relative_to(base).parts
            for name in files:
                info = os.lstat(os.path.join(directory, name))
                if not stat.S_ISREG(info.st_mode):
                    continue
                try:
                    yield StorageURI.from_segments((*prefix.segments, *relative, name)), info
                except InvalidStorageURI:
                    logger.warning("storage: skipping %r under %s, which no URI can name", name, directory)

    def list(self, prefix: "StorageURI | str") -> list[StoredFile]:
        location = as_location(prefix, directory=True)
        found = [(loc.key.encode("utf-8", "surrogateescape"), StoredFile(loc.uri, info.st_size))
                 for loc, info in self._walk(location)]
        # S3 lists keys in the order of their UTF-8 bytes; the same order here.
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

    # --- deleting ----------------------------------------------------------------------------

    def delete(self, uri: "StorageURI | str") -> bool:
        location = as_location(uri)
        entry = self._entry(location)
        if entry.is_dir() and not entry.is_symlink():
            return False
        try:
            entry.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        self._prune(entry.parent)
        return True

    def delete_prefix(self, prefix: "StorageURI | str") -> int:
        location = as_location(prefix, directory=True)
        base = self._path(location)
        if base == self.root:
            raise InvalidStorageURI(f"{shown(location.uri)} is refused: it resolves to the whole storage")
        if not base.is_dir():
            return 0
        deleted = 0
        for directory, dirs, files in os.walk(base, topdown=False, followlinks=False):
            for name in files:
                path = os.path.join(directory, name)
                regular = stat.S_ISREG(os.lstat(path).st_mode)
                try:
                    os.unlink(path)  # a link is removed, not its target
                except FileNotFoundError:
                    continue
                deleted += regular
            for name in dirs:
                path = os.path.join(directory, name)
                try:
                    os.unlink(path) if os.path.islink(path) else os.rmdir(path)
                except (FileNotFoundError, OSError):
                    pass  # something was written meanwhile: it stays
        self._prune(base)
        return deleted

    def _prune(self, directory: Path) -> None:
        """Remove `directory` and its ancestors while they are empty, up to the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
