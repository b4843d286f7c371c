"""File helpers of the closure package: atomic writes and sha256 digests.

Model weights, model cards, response tables, training checkpoints and data manifests are read by
later runs that trust them, so each is written atomically: to a temporary file in the target's
directory (same filesystem), fsynced, then renamed over the target (``os.replace`` is atomic on
POSIX) and the directory fsynced. A crash leaves the old file or the new one, never half of
one. Digests name the exact weights and data a model was trained on (model cards, manifests).
Standard library only, so the serving path imports it for free.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "data_hash", "portable_paths",
           "sha256_of"]

_CHUNK = 1 << 22
#: the repository (or installed source tree) root: paths below it are written relative to it
ROOT = Path(__file__).resolve().parents[1]
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (skipped where directories cannot be fsynced)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write the file there (any writer: bytes, h5py,
    ...). When the block ends without an exception the file is fsynced and renamed over
    ``path`` (mode 0644); otherwise it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def sha256_of(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> str:
    """Hex sha256 of ``source``: the bytes themselves, or the contents of the file at a path
    (read in chunks, so large data files need not fit in memory)."""
    h = hashlib.sha256()
    if isinstance(source, bytes | bytearray | memoryview):
        h.update(source)
        return h.hexdigest()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def data_hash(path: str | Path) -> str:
    """sha256 identifying a data file: of its ``<file>.manifest.json`` when one exists (the
    manifest holds the file's own hash and per-sample provenance, so hashing a large data file
    again is unnecessary), else of the file. Cached per (path, size, mtime) for this process.
    Recorded in model cards so a model names exactly the data it saw."""
    p = Path(path)
    manifest = p.with_name(p.name + ".manifest.json")
    if manifest.exists():
        p = manifest
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_of(p)
    return _HASH_CACHE[key]


def portable_paths(doc, root: str | os.PathLike[str] | None = None):
    """``doc`` (a JSON-able tree) with every string that is an absolute path below ``root``
    (default: the repository root) or the working directory made relative to it, so committed
    cards, manifests and results name no machine's directories."""
    bases = [str(Path(root or ROOT).resolve()), str(Path.cwd().resolve())]

    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(fix(x) for x in v)
        if isinstance(v, str) and v.startswith("/"):
            for b in bases:
                if v == b:
                    return "."
                if v.startswith(b + "/"):
                    return v[len(b) + 1:]
        return v

    return fix(doc)
