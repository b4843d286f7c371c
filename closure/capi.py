"""The closure's C API from the Python side: build flags, the exported table, the state file.

    python -m closure.capi --cflags --libs          # what a C or Fortran build needs
    python -m closure.capi --include-dir | --lib-dir | --fortran-module | --pkg-config-path
    python -m closure.capi --mpi --cflags --libs    # the same for closure_open_mpi (MPMD workers)
    python -m closure table export MODEL_DIR        # MODEL_DIR/closure_table.bin for C

The library ``closure/lib/libporous_closure.so`` (built by ``setup.py``, plain C++, no Python or
libtorch; header ``closure/include/porous_closure.h``, Fortran module
``closure/include/porous_closure.f90``) answers table-mode queries exactly as
``Closure.query(..., mode="table")``. It reads the table from ``closure_table.bin``, which
:func:`export_table` writes from the model's ``closure_table.h5`` (``closure table build`` does it
too). Its per-cell state files are written and read here by :func:`save_state` /
:func:`load_state`, so a Python closure and a C program can hand state to each other (table-mode
state: a Python closure's online tokens are not part of it). Formats: docs/capi.md.

This module imports neither torch nor the model unless a function needs them (the flags are
printed at once).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from closure.files import atomic_write_bytes, sha256_of

if TYPE_CHECKING:
    from closure.api import Closure

__all__ = ["LIB_NAME", "MPI_LIB_NAME", "STATE_MAGIC", "TABLE_EXPORT", "TABLE_MAGIC", "cflags",
           "export_table", "mpi_library_path",
           "fortran_module", "include_dir", "lib_dir", "library_path", "libs", "load_state",
           "main", "pkgconfig_dir", "read_state", "read_table_export", "save_state",
           "state_bytes", "table_export_bytes"]

PACKAGE_DIR = Path(__file__).resolve().parent
LIB_NAME = "libporous_closure.so"
MPI_LIB_NAME = "libporous_closure_mpi.so"
#: the MPI compile and link flags libporous_closure_mpi was built with (setup.py writes it)
MPI_FLAGS_FILE = "porous_closure_mpi.flags"
TABLE_EXPORT = "closure_table.bin"
TABLE_MAGIC, TABLE_VERSION, TABLE_HEADER = b"PCTABLE\0", 1, 256
STATE_MAGIC, STATE_VERSION, STATE_HEADER = b"PCSTATE\0", 1, 128
_DIGEST = 32
#: header fields after magic, version and header size (little-endian; docs/capi.md)
_TABLE_FIELDS = struct.Struct("<64s64sqqdddddddI")
_STATE_FIELDS = struct.Struct("<64sdq")
_STATE_ARRAYS = (("ids", "<i8"), ("ps", "<f8"), ("t", "<f8"), ("steps", "<i8"),
                 ("frac", "<f8"), ("rng", "<i8"))


# ---------------------------------------------------------------------------------------------
# where things are

def include_dir() -> Path:
    """Directory of ``porous_closure.h`` and ``porous_closure.f90``."""
    return PACKAGE_DIR / "include"


def lib_dir() -> Path:
    """Directory of ``libporous_closure.so``."""
    return PACKAGE_DIR / "lib"


def library_path() -> Path:
    return lib_dir() / LIB_NAME


def mpi_library_path() -> Path:
    return lib_dir() / MPI_LIB_NAME


def _mpi_flags() -> tuple[str, str]:
    lines = (lib_dir() / MPI_FLAGS_FILE).read_text().splitlines()
    return lines[0].strip(), lines[1].strip()


def fortran_module(mpi: bool = False) -> Path:
    """Source of the Fortran module ``porous_closure`` (compile it with the program: .mod
    files are compiler-specific); ``mpi``: of ``porous_closure_mpi`` (closure_open_mpi)."""
    return include_dir() / ("porous_closure_mpi.f90" if mpi else "porous_closure.f90")


def pkgconfig_dir() -> Path:
    """Directory of ``closure.pc`` (for ``PKG_CONFIG_PATH``)."""
    return lib_dir() / "pkgconfig"


def cflags(mpi: bool = False) -> str:
    """Compiler flags; ``mpi``: for ``porous_closure_mpi.h`` (with MPI's own, so a plain ``cc``
    works as well as ``mpicc``)."""
    own = f"-I{shlex.quote(str(include_dir()))}"
    return f"{own} {_mpi_flags()[0]}".strip() if mpi else own


def libs(mpi: bool = False) -> str:
    """Link flags, with an rpath so the program finds the library where it is installed;
    ``mpi``: libporous_closure_mpi (the whole C API and closure_open_mpi) and MPI's flags."""
    d = shlex.quote(str(lib_dir()))
    if mpi:
        return f"-L{d} -Wl,-rpath,{d} -lporous_closure_mpi {_mpi_flags()[1]}".strip()
    return f"-L{d} -Wl,-rpath,{d} -lporous_closure"


# ---------------------------------------------------------------------------------------------
# the exported table

def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _checked(data: bytes, magic: bytes, version: int, header: int, where: str, kind: str,
             ) -> None:
    if data[:8] != magic:
        raise ValueError(f"{where}: not a {kind} file")
    v, h = struct.unpack_from("<II", data, 8)
    if v != version:
        raise ValueError(f"{where}: {kind} format version {v} is not supported (reads "
                         f"{version})")
    if h != header or len(data) < header + _DIGEST:
        raise ValueError(f"{where}: malformed {kind} header")
    if _digest(data[:-_DIGEST]) != data[-_DIGEST:]:
        raise ValueError(f"{where}: checksum mismatch (the file is corrupt or truncated)")


def table_export_bytes(c: Closure, source_sha256: str) -> bytes:
    """The exported table of closure ``c`` (its table and the constants of its table mode)
    as the C library reads it; ``source_sha256``: of the ``closure_table.h5`` it came from."""
    tab = c.table
    if tab is None:
        raise ValueError("the closure has no table to export")
    nodes = np.ascontiguousarray(tab.nodes, np.float64)
    arrays = [np.ascontiguousarray(a, np.float64) for a in
              (tab.area, tab.temperature, tab.uncertainty)]
    nP, nT = arrays[0].shape
    lo, hi = c.envelope
    sha = c.runner.fingerprint()["weights_sha256"]
    head = TABLE_MAGIC + struct.pack("<II", TABLE_VERSION, TABLE_HEADER) + _TABLE_FIELDS.pack(
        sha.encode("ascii"), source_sha256.encode("ascii"), nP, nT, float(tab.dt), float(lo),
        float(hi), float(tab.threshold), float(c.runner.dt_meso), float(c.p_trigger),
        float(c.ps_window), 0)
    data = head.ljust(TABLE_HEADER, b"\0") + b"".join(
        a.astype("<f8").tobytes() for a in (nodes, *arrays))
    return data + _digest(data)


def export_table(model_dir: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Write ``closure_table.bin`` (default: in ``model_dir``, None = the shipped model) from the
    model's ``closure_table.h5``, atomically. The table is loaded the way
    ``Closure.load(model_dir)`` loads it (fingerprint checked against the weights), so the C
    library answers with exactly the arrays Python uses."""
    from closure.api import DEFAULT_MODEL_DIR, Closure
    from closure.table import TABLE_FILE, TableError

    d = DEFAULT_MODEL_DIR if model_dir is None else Path(model_dir)
    h5 = d / TABLE_FILE
    if not h5.exists():
        raise TableError(f"{h5}: no table to export; build it: closure table build {d}")
    source = sha256_of(h5)
    c = Closure.load(d)
    if sha256_of(h5) != source:
        raise TableError(f"{h5} changed while it was exported; export again")
    path = d / TABLE_EXPORT if out is None else Path(out)
    atomic_write_bytes(path, table_export_bytes(c, source))
    return path


def read_table_export(path: str | Path) -> dict[str, Any]:
    """The fields of an exported table (checksum verified)."""
    data = Path(path).read_bytes()
    _checked(data, TABLE_MAGIC, TABLE_VERSION, TABLE_HEADER, str(path), "closure table export")
    (w, s, nP, nT, dt, lo, hi, thr, dtm, ptrig, win, flags) = _TABLE_FIELDS.unpack_from(data, 16)
    body = np.frombuffer(data[TABLE_HEADER:-_DIGEST], "<f8")
    if body.size != nP + 3 * nP * nT:
        raise ValueError(f"{path}: malformed table")
    a = body[nP:].reshape(3, nP, nT)
    return {"weights_sha256": w.decode(), "source_sha256": s.decode(), "dt": dt,
            "envelope": (lo, hi), "threshold": thr, "dt_meso": dtm, "p_trigger": ptrig,
            "ps_window": win, "flags": flags, "nodes": body[:nP].copy(), "area": a[0].copy(),
            "temperature": a[1].copy(), "uncertainty": a[2].copy()}


# ---------------------------------------------------------------------------------------------
# the C library's state file

def state_bytes(sd: Mapping[str, Any]) -> bytes:
    """A closure's ``state_dict()`` as the C library's state file (docs/capi.md). The file
    holds table-mode state: a state with online tokens is refused (``release`` those cells or
    keep them in ``state_dict`` checkpoints)."""
    n_tok = np.asarray(sd["tok_ids"]).size
    if n_tok:
        raise ValueError(f"state_dict has online tokens for {n_tok} cells; the C state file "
                         "holds table-mode state only")
    ids = np.asarray(sd["ids"])
    head = STATE_MAGIC + struct.pack("<II", STATE_VERSION, STATE_HEADER) + _STATE_FIELDS.pack(
        str(np.asarray(sd["weights_sha256"])).encode("ascii"), float(np.asarray(sd["dt_meso"])),
        ids.size)
    data = head.ljust(STATE_HEADER, b"\0") + b"".join(
        np.ascontiguousarray(sd[k], dt).tobytes() for k, dt in _STATE_ARRAYS)
    return data + _digest(data)


def read_state(path: str | Path) -> dict[str, Any]:
    """A C state file's contents: ``weights_sha256``, ``dt_meso`` and the per-cell arrays
    (``ids``, ``ps``, ``t``, ``steps``, ``frac``, ``rng``), checksum verified."""
    data = Path(path).read_bytes()
    _checked(data, STATE_MAGIC, STATE_VERSION, STATE_HEADER, str(path), "closure state")
    sha, dtm, n = _STATE_FIELDS.unpack_from(data, 16)
    if n < 0 or len(data) != STATE_HEADER + 48 * n + _DIGEST:
        raise ValueError(f"{path}: malformed state (n = {n})")
    out: dict[str, Any] = {"weights_sha256": sha.decode("ascii"), "dt_meso": dtm}
    at = STATE_HEADER
    for k, dt in _STATE_ARRAYS:
        out[k] = np.frombuffer(data, dt, n, at).astype(dt[1:])
        at += 8 * n
    return out


def save_state(c: Closure, path: str | Path) -> None:
    """Write closure ``c``'s per-cell state as a C state file, atomically."""
    atomic_write_bytes(path, state_bytes(c.state_dict()))


def load_state(c: Closure, path: str | Path) -> None:
    """Replace closure ``c``'s per-cell state by a C state file's (checked by
    ``Closure.load_state_dict``: weights, dt_meso, ids, ranges). Online tokens are dropped."""
    st = read_state(path)
    sd = c.state_dict()
    new = {k: sd[k] for k in ("format", "version")}
    new.update({k: np.array(st[k]) for k in ("weights_sha256", "dt_meso")})
    new.update({k: st[k] for k, _ in _STATE_ARRAYS})
    new.update({k: v[:0] for k, v in sd.items() if k.startswith("tok_")})
    c.load_state_dict(new)


# ---------------------------------------------------------------------------------------------
# python -m closure.capi

def main(argv: Sequence[str] | None = None) -> int:
    """Print what a C or Fortran build needs (pkg-config style: requested items on one line)."""
    ap = argparse.ArgumentParser(prog="python -m closure.capi",
                                 description="Build flags of the closure's C API "
                                             "(libporous_closure, porous_closure.h/.f90).")
    ap.add_argument("--cflags", action="store_true", help="compiler flags (-I...)")
    ap.add_argument("--libs", action="store_true", help="linker flags (-L, rpath, -l)")
    ap.add_argument("--include-dir", action="store_true", help="directory of the header")
    ap.add_argument("--lib-dir", action="store_true", help="directory of the library")
    ap.add_argument("--fortran-module", action="store_true",
                    help="path of porous_closure.f90 (compile it with your program)")
    ap.add_argument("--pkg-config-path", action="store_true",
                    help="directory of closure.pc (for PKG_CONFIG_PATH)")
    ap.add_argument("--model-dir", action="store_true", help="the shipped default model")
    ap.add_argument("--mpi", action="store_true",
                    help="with --cflags/--libs/--fortran-module: for closure_open_mpi "
                         "(porous_closure_mpi.h/.f90, libporous_closure_mpi: MPMD workers)")
    a = ap.parse_args(argv)
    items = [(a.cflags, lambda: cflags(a.mpi)), (a.libs, lambda: libs(a.mpi)),
             (a.include_dir, lambda: str(include_dir())),
             (a.lib_dir, lambda: str(lib_dir())),
             (a.fortran_module, lambda: str(fortran_module(a.mpi))),
             (a.pkg_config_path, lambda: str(pkgconfig_dir())),
             (a.model_dir, lambda: str(PACKAGE_DIR / "weights" / "default"))]
    want = [f for on, f in items if on]
    if not want:
        ap.print_help()
        return 2
    if (a.libs or a.lib_dir) and not library_path().exists():
        print(f"error: {library_path()} is not built; build it with: pip install -e . (or "
              "python setup.py build_ext --inplace)", file=sys.stderr)
        return 2
    if a.mpi and (a.cflags or a.libs) and not mpi_library_path().exists():
        print(f"error: {mpi_library_path()} is not built: it needs an MPI C++ compiler wrapper "
              "(mpicxx) when setup.py runs; install one (pip install mpich) and rebuild (pip "
              "install -e . or python setup.py build_ext --inplace)", file=sys.stderr)
        return 2
    print(" ".join(f() for f in want))
    return 0


if __name__ == "__main__":
    sys.exit(main())
