"""Writing and reading the package's files: atomic writes and versioned JSON documents.

Every file is written atomically (a temp file in the same folder, then a
rename), so a reader (the dashboard, possibly while training runs) never sees
half a file. Every JSON document carries ``schema_version`` and a document
type in ``kind`` (``pss-run``, ``pss-snapshot``, ...); :func:`read_document`
checks both and says in one line what is wrong with a file.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import PssError

try:  # 3-4x faster on the many-megabyte snapshots of long runs; optional
    import orjson as _fastjson
except ImportError:  # pragma: no cover - depends on the environment
    _fastjson = None

SCHEMA_VERSION = 1

# The document types (the ``kind`` field of each JSON file).
RUN_DOC = "pss-run"
SNAPSHOT_DOC = "pss-snapshot"
FRONT_DOC = "pss-front"
CARD_DOC = "pss-subnet-card"
COMPARISON_DOC = "pss-comparison"


class DocumentError(PssError):
    """A JSON document that cannot be used. ``reason`` is the short why ("it is not valid JSON ...")."""

    def __init__(self, what: str, path: Path, reason: str, fix: str = "") -> None:
        self.what, self.path, self.reason = what, Path(path), reason
        super().__init__(f"{what} {path}: {reason}" + (f"; {fix}" if fix else ""))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(binary file)`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def os_error_hint(exc: OSError) -> str:
    """What to do about a failed write, by its errno."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full; free some space or write somewhere else"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "that place cannot be written (read-only or no permission); write somewhere else"
    return "check the path and the disk"


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which file, and what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot write{where}: {exc.strerror or exc.__class__.__name__}; {os_error_hint(exc)}"


def ensure_writable(folder: Path) -> Path:
    """Check, before any long work starts, that files can be created in ``folder`` (or where it would be made).

    Asks the OS (``os.access``), so nothing is written: a read-only file system
    or a missing permission is caught here; a full disk only shows when writing.
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        reason = "it is not a folder" if not probe.is_dir() else "read-only file system or no permission"
        raise PssError(f"cannot write to {folder}: {reason} ({probe}); write somewhere else")
    return folder


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=1, allow_nan=False).encode()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def read_document(path: Path, what: str, kind: str | None = None) -> dict[str, Any]:
    """The JSON object at ``path`` after checking its schema version (and ``kind`` when given).

    Raises :class:`DocumentError` (a :class:`PssError`) naming the file and
    what is wrong: missing, unreadable, empty, not JSON, not an object,
    another schema version or another kind of document.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(what, path, "it is missing") from None
    except OSError as exc:
        raise DocumentError(what, path, f"cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    if not text.strip():
        raise DocumentError(what, path, "it is empty", "the file is damaged")
    try:
        data = _fastjson.loads(text) if _fastjson is not None else json.loads(text)
    except (ValueError, UnicodeDecodeError):  # json.JSONDecodeError and orjson.JSONDecodeError are ValueErrors
        raise DocumentError(what, path, "it is not valid JSON (half-written or damaged)") from None
    if not isinstance(data, dict):
        raise DocumentError(what, path, "it does not hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DocumentError(what, path, f"it has schema version {version!r}; this pss-explorer reads version {SCHEMA_VERSION}",
                            "upgrade pss-explorer")
    if kind is not None and data.get("kind") != kind:
        raise DocumentError(what, path, f"its kind is {data.get('kind')!r}, expected {kind!r}")
    return data
