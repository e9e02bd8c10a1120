"""Files that must survive a power cut: written to a temporary name, synced, then renamed."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """After this returns, ``path`` holds ``data`` whole — or, after a crash, its old content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per process and thread: two writers of one file never share a temporary.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)  # the umask may have narrowed it
    os.replace(tmp, path)


def remove_file(path: str | Path) -> OSError | None:
    """Delete ``path`` if it is there; returns the error when it could not be deleted."""
    try:
        os.remove(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc
    return None
