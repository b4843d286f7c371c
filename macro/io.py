"""Simulation output (HDF5 + XDMF sidecar) and crash-safe checkpoints.

Output file layout (one file per run, cell-centred data on a uniform Cartesian grid)::

    /                 attrs: config (JSON, sorted keys), created (ISO 8601, UTC), format,
                             format_version, nx, ny, dx, dy, x0, y0, ndim
    /x, /y            cell-centre coordinates, shapes (nx,) and (ny,)
    /frames/times     float64 (nframes,)  -- frame times, in frame order
    /frames/steps     int64 (nframes,)
    /frames/000000/   attrs: time, step; one float64 dataset per field,
                      shape (nx,) for a 1D run (ny == 1), (ny, nx) in 2D (row = y index)
    /final/           same layout as a frame, written once at the end of a run
    /detonation/      (reactive runs with [detonation] tracking) lead-shock history: t, x,
                      p_lead (per step), xt_t, xt_p (x-t pressure record, row-averaged in 2D);
                      attrs: D_CJ, p_CJ (JWL), run distance x_star/t_star by the speed and
                      the pressure criteria (NaN when not detonated)

The file is flushed after every frame, so a run that dies keeps every finished frame. On close
an XDMF sidecar (``<name>.xmf``) is written next to it: HDF5 alone carries no mesh semantics
that ParaView/VisIt understand, the sidecar maps each frame onto a CoRectMesh time step.

Checkpoints are separate, self-contained HDF5 files written atomically (temp file + fsync +
rename), so a crash while checkpointing never destroys the previous good checkpoint.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from .grid import GridSpec  # re-exported: it lived here before macro.grid

__all__ = [
    "GridSpec",
    "OutputWriter",
    "write_xdmf",
    "save_checkpoint",
    "load_checkpoint",
    "read_config",
    "read_times",
    "read_frame",
    "read_final",
    "atomic_write_bytes",
    "flatten_state",
    "unflatten_state",
]

FORMAT_NAME = "macro-output"
CHECKPOINT_FORMAT_NAME = "macro-checkpoint"
FORMAT_VERSION = 1
FRAME_DIGITS = 6

# Checkpoint-internal root attributes; user attrs may not start with this prefix.
_RESERVED_PREFIX = "__macro"
_CKPT_FORMAT_ATTR = "__macro_format__"
_CKPT_JSON_ATTR = "__macro_json_attrs__"  # names of attrs stored as JSON strings


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: os.umask() can only be queried by setting it, which races with threads.
_UMASK = _read_umask()


# --------------------------------------------------------------------------------------------
# atomic file helpers
# --------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """fsync a directory so a completed rename survives power loss (no-op where unsupported)."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some network/virtual filesystems refuse directory fsync
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _target_mode(path: Path) -> int:
    """Permissions for a replacement file: keep the old file's, else what open() would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def _temp_path(path: Path) -> Path:
    """Create an empty temp file beside ``path`` (same filesystem, so os.replace is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _unlink_quiet(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a torn one.

    Writes a temp file in the same directory, fsyncs it, renames it over ``path`` and fsyncs
    the directory. On any error the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    mode = _target_mode(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------------------------
# output writer
# --------------------------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    """JSON fallback for the numpy scalars/arrays and paths that end up in resolved configs."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid {what} name {name!r}: need a non-empty string without '/'")


def _frame_name(index: int) -> str:
    return f"{index:0{FRAME_DIGITS}d}"


def _frame_groups(frames: h5py.Group) -> list[str]:
    """Frame group names in frame order (skips the times/steps index datasets)."""
    names = [k for k in frames if k.isdigit() and isinstance(frames[k], h5py.Group)]
    return sorted(names, key=int)  # numeric: stays right past 10**FRAME_DIGITS frames


class OutputWriter:
    """Append time frames of cell-centred fields to one HDF5 file; write the XDMF on close.

    ``mode="w"`` starts a fresh file. ``mode="a"`` resumes an existing one (e.g. after a restart
    from checkpoint): the grid must match, the stored config is replaced by the new one, and the
    first new frame drops any stored frames at or after its time -- those were written after the
    checkpoint by the run that died, and keeping them would make time go backwards.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: GridSpec,
        config: Mapping[str, Any],
        *,
        mode: str = "w",
    ) -> None:
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self.path = Path(path)
        self.grid = grid
        self.xmf_path = self.path.with_suffix(".xmf")
        config_json = _dumps(dict(config))  # fail before touching the file
        resume = mode == "a" and self.path.exists()
        self._file: h5py.File | None = h5py.File(self.path, "a" if resume else "w")
        self._pending_truncate = resume
        try:
            if resume:
                self._open_existing(config_json)
            else:
                self._init_new(config_json)
            self._file.flush()
        except BaseException:
            self._file.close()
            self._file = None
            raise

    # -- setup ----------------------------------------------------------------------------

    def _init_new(self, config_json: str) -> None:
        f = self._require_open()
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["config"] = config_json
        f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        for key, value in self.grid.attrs().items():
            f.attrs[key] = value
        x, y = self.grid.cell_centers()
        f.create_dataset("x", data=x)
        f.create_dataset("y", data=y)
        frames = f.create_group("frames")
        for name, dtype in (("times", np.float64), ("steps", np.int64)):
            frames.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(256,))

    def _open_existing(self, config_json: str) -> None:
        f = self._require_open()
        if f.attrs.get("format") != FORMAT_NAME or "frames" not in f:
            raise ValueError(f"{self.path} is not a {FORMAT_NAME} file; cannot append")
        stored = GridSpec.from_attrs(f.attrs)
        if stored != self.grid:
            raise ValueError(f"cannot append to {self.path}: stored grid {stored} != {self.grid}")
        f.attrs["config"] = config_json

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError(f"OutputWriter for {self.path} is closed")
        return self._file

    # -- writing --------------------------------------------------------------------------

    @property
    def nframes(self) -> int:
        """Number of frames stored so far."""
        return int(self._require_open()["frames/times"].shape[0])

    def _validated(self, fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check every field before writing any, so a bad call leaves no half-written frame."""
        if not fields:
            raise ValueError("fields is empty: a frame needs at least one field")
        expected = self.grid.shape
        out: dict[str, np.ndarray] = {}
        for name, value in fields.items():
            _check_name(name, "field")
            arr = np.asarray(value)
            if arr.shape != expected:
                raise ValueError(
                    f"field {name!r} has shape {arr.shape}, expected {expected} "
                    f"(grid nx={self.grid.nx}, ny={self.grid.ny})"
                )
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"field {name!r} has non-numeric dtype {arr.dtype}")
            out[name] = np.ascontiguousarray(arr, dtype=np.float64)
        return out

    @staticmethod
    def _write_group(group: h5py.Group, t: float, step: int, data: dict[str, np.ndarray]) -> None:
        group.attrs["time"] = float(t)
        group.attrs["step"] = int(step)
        for name, arr in data.items():
            group.create_dataset(name, data=arr)

    def _truncate_from(self, t: float) -> None:
        """Drop stored frames with time >= t (stale output from a run resumed at t)."""
        frames = self._require_open()["frames"]
        stale = frames["times"][...] >= t
        keep = int(np.argmax(stale)) if stale.any() else stale.size  # first stale frame on
        for name in _frame_groups(frames)[keep:]:
            del frames[name]
        frames["times"].resize((keep,))
        frames["steps"].resize((keep,))

    def write_frame(self, t: float, step: int, fields: Mapping[str, np.ndarray]) -> None:
        """Store one output time; fields are cast to float64. Flushed to disk before returning."""
        f = self._require_open()
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t!r}")
        data = self._validated(fields)
        if self._pending_truncate:
            self._truncate_from(t)
            self._pending_truncate = False
        frames = f["frames"]
        n = int(frames["times"].shape[0])
        if n and t <= float(frames["times"][n - 1]):
            last = float(frames["times"][n - 1])
            raise ValueError(f"frame time {t!r} is not after the previous frame time {last!r}")
        self._write_group(frames.create_group(_frame_name(n)), t, step, data)
        frames["times"].resize((n + 1,))
        frames["times"][n] = t
        frames["steps"].resize((n + 1,))
        frames["steps"][n] = int(step)
        f.flush()

    def write_final(self, t: float, step: int, fields: Mapping[str, np.ndarray]) -> None:
        """Store the end-of-run state under /final (replacing an earlier one); flushed."""
        f = self._require_open()
        data = self._validated(fields)
        if "final" in f:
            del f["final"]
        self._write_group(f.create_group("final"), t, step, data)
        f.flush()

    def write_group(self, name: str, arrays: Mapping[str, np.ndarray],
                    attrs: Mapping[str, Any] | None = None) -> None:
        """Store run diagnostics (e.g. the lead-shock history) under /<name>, replacing an
        earlier group of that name; not a frame, so the XDMF sidecar ignores it."""
        _check_name(name, "group")
        if name in ("frames", "final", "x", "y"):
            raise ValueError(f"group name {name!r} is reserved")
        f = self._require_open()
        if name in f:
            del f[name]
        g = f.create_group(name)
        for key, arr in arrays.items():
            _check_name(key, "dataset")
            g.create_dataset(key, data=np.asarray(arr))
        for key, value in (attrs or {}).items():
            g.attrs[key] = value
        f.flush()

    def close(self) -> None:
        """Close the HDF5 file, then write the XDMF sidecar from it. Safe to call twice."""
        if self._file is None:
            return
        try:
            self._file.close()
        finally:
            self._file = None
        write_xdmf(self.path, self.xmf_path)

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Also on error: the frames written so far are the most useful debugging output, but a
        # failing sidecar must not mask the exception that is already propagating.
        try:
            self.close()
        except Exception as close_exc:
            warnings.warn(f"closing {self.path} after an error failed: {close_exc}", stacklevel=2)


# --------------------------------------------------------------------------------------------
# reading output files
# --------------------------------------------------------------------------------------------


def _open_existing_h5(path: str | os.PathLike[str], what: str) -> h5py.File:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", str(p))
    return h5py.File(p, "r")


def read_times(path: str | os.PathLike[str]) -> np.ndarray:
    """Frame times of an output file, in frame order."""
    with _open_existing_h5(path, "output file") as f:
        return np.asarray(f["frames/times"][...], dtype=np.float64)


def _read_group(group: h5py.Group) -> tuple[float, int, dict[str, np.ndarray]]:
    fields = {k: v[...] for k, v in group.items() if isinstance(v, h5py.Dataset)}
    return float(group.attrs["time"]), int(group.attrs["step"]), fields


def read_frame(
    path: str | os.PathLike[str], index: int = -1
) -> tuple[float, int, dict[str, np.ndarray]]:
    """``(time, step, fields)`` of frame ``index`` (negative counts from the end)."""
    with _open_existing_h5(path, "output file") as f:
        names = _frame_groups(f["frames"])
        if not names:
            raise IndexError(f"{path} has no frames")
        return _read_group(f["frames"][names[index]])


def read_final(path: str | os.PathLike[str]) -> tuple[float, int, dict[str, np.ndarray]]:
    """``(time, step, fields)`` of the /final group; KeyError if the run wrote none."""
    with _open_existing_h5(path, "output file") as f:
        if "final" not in f:
            raise KeyError(f"{path} has no /final group")
        return _read_group(f["final"])


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved config stored in an output file or a checkpoint (``attrs["config"]``)."""
    with _open_existing_h5(path, "file") as f:
        if "config" not in f.attrs:
            raise KeyError(f"{path} stores no config")
        raw = f.attrs["config"]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise ValueError(f"config stored in {path} is not a JSON object")
    return config


# --------------------------------------------------------------------------------------------
# XDMF
# --------------------------------------------------------------------------------------------

_XDMF_NUMBER_TYPES = {"f": "Float", "i": "Int", "u": "UInt"}


def _fmt(value: float) -> str:
    return repr(float(value))


def _xml_item(
    parent: ET.Element, dims: tuple[int, ...], text: str, dtype: np.dtype, fmt: str
) -> None:
    kind = _XDMF_NUMBER_TYPES.get(dtype.kind)
    if kind is None:
        raise ValueError(f"dtype {dtype} cannot be described in XDMF")
    item = ET.SubElement(
        parent,
        "DataItem",
        Dimensions=" ".join(str(d) for d in dims),
        NumberType=kind,
        Precision=str(dtype.itemsize),
        Format=fmt,
    )
    item.text = text


def _xdmf_grid(
    collection: ET.Element,
    name: str,
    grid: GridSpec,
    t: float,
    group: h5py.Group,
    h5_ref: str,
) -> None:
    """One uniform grid (a time step) whose cell attributes point at ``group``'s datasets."""
    g = ET.SubElement(collection, "Grid", Name=name, GridType="Uniform")
    ET.SubElement(g, "Time", Value=_fmt(t))
    # CoRectMesh lists NODE counts, slowest axis first; cell data then has one value fewer per
    # axis. A 1D run becomes a one-cell-thick slab so viewers draw cells, not a degenerate line.
    dy = grid.dy if grid.dy > 0.0 else grid.dx
    ET.SubElement(
        g, "Topology", TopologyType="2DCoRectMesh", Dimensions=f"{grid.ny + 1} {grid.nx + 1}"
    )
    geo = ET.SubElement(g, "Geometry", GeometryType="ORIGIN_DXDY")
    f64 = np.dtype(np.float64)
    # XDMF orders origin and spacing like the dimensions: (y, x).
    _xml_item(geo, (2,), f"{_fmt(grid.y0)} {_fmt(grid.x0)}", f64, "XML")
    _xml_item(geo, (2,), f"{_fmt(dy)} {_fmt(grid.dx)}", f64, "XML")
    ncells = grid.nx * grid.ny
    for field, ds in group.items():
        if not isinstance(ds, h5py.Dataset):
            continue
        if ds.size != ncells:
            raise ValueError(f"{ds.name} has {ds.size} values, expected {ncells} (one per cell)")
        attr = ET.SubElement(g, "Attribute", Name=field, AttributeType="Scalar", Center="Cell")
        # Always the cell shape (ny, nx), even for the (nx,) datasets of a 1D run: VTK's Xdmf2
        # reader takes only the first value of a rank-1 item on a 2D mesh, while Xdmf3 reads a
        # rank-mismatched dataset whole when the value counts agree.
        _xml_item(attr, (grid.ny, grid.nx), f"{h5_ref}:{ds.name}", ds.dtype, "HDF")


def write_xdmf(
    h5_path: str | os.PathLike[str], xmf_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write an XDMF 3 sidecar describing every frame (and /final) of an output file.

    The sidecar is a temporal collection of 2DCoRectMesh grids whose cell-centred attributes
    reference the HDF5 datasets by a path relative to the sidecar, so the pair can be moved
    together. /final is appended as a last time step unless a frame already has its time.
    Returns the sidecar path (default: ``h5_path`` with suffix ``.xmf``).
    """
    h5_path = Path(h5_path)
    xmf = h5_path.with_suffix(".xmf") if xmf_path is None else Path(xmf_path)
    h5_ref = Path(os.path.relpath(h5_path.resolve(), xmf.resolve().parent)).as_posix()

    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    collection = ET.SubElement(
        domain, "Grid", Name="frames", GridType="Collection", CollectionType="Temporal"
    )
    with _open_existing_h5(h5_path, "output file") as f:
        grid = GridSpec.from_attrs(f.attrs)
        times: list[float] = []
        if "frames" in f:
            for name in _frame_groups(f["frames"]):
                group = f["frames"][name]
                t = float(group.attrs["time"])
                times.append(t)
                _xdmf_grid(collection, f"frame_{name}", grid, t, group, h5_ref)
        if "final" in f:
            t_final = float(f["final"].attrs["time"])
            if not any(math.isclose(t_final, t, rel_tol=1e-12) for t in times):
                _xdmf_grid(collection, "final", grid, t_final, f["final"], h5_ref)

    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    text = '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n'
    atomic_write_bytes(xmf, (text + body + "\n").encode("utf-8"))
    return xmf


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------

_ScalarTypes = (bool, int, float, str, np.bool_, np.integer, np.floating)


def _encode_attrs(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split attrs into HDF5-native values and JSON strings (dicts, lists, None)."""
    native: dict[str, Any] = {}
    as_json: list[str] = []
    for key, value in attrs.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"checkpoint attr keys must be non-empty strings, got {key!r}")
        if key.startswith(_RESERVED_PREFIX):
            raise ValueError(f"checkpoint attr name {key!r} is reserved")
        if isinstance(value, _ScalarTypes):
            native[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            native[key] = value
        elif value is None or isinstance(value, dict | list | tuple):
            try:
                native[key] = _dumps(value)
            except TypeError as exc:
                raise TypeError(f"checkpoint attr {key!r} is not JSON serialisable: {exc}") from exc
            as_json.append(key)
        else:
            raise TypeError(
                f"checkpoint attr {key!r} has unsupported type {type(value).__name__}; use a "
                "scalar, str, numeric ndarray, or JSON-serialisable dict/list/None"
            )
    return native, as_json


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()  # back to the Python scalar that was saved
    return value


def _write_checkpoint_h5(
    f: h5py.File, arrays: Mapping[str, np.ndarray], native: dict[str, Any], as_json: list[str]
) -> None:
    """Fill an open (temporary) checkpoint file; split out so tests can inject failures."""
    f.attrs[_CKPT_FORMAT_ATTR] = f"{CHECKPOINT_FORMAT_NAME}/{FORMAT_VERSION}"
    f.attrs[_CKPT_JSON_ATTR] = _dumps(sorted(as_json))
    for key, value in native.items():
        f.attrs[key] = value
    for name, arr in arrays.items():
        f.create_dataset(name, data=arr)  # no filters/casts: bit-exact, same dtype


def save_checkpoint(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
) -> None:
    """Atomically write a restart file: old checkpoint or new one, never a torn mix.

    ``arrays`` are stored bit-exactly with their dtype. ``attrs`` may hold scalars, strings,
    numeric ndarrays and JSON-serialisable dicts/lists/None (stored as JSON strings, flagged
    so :func:`load_checkpoint` decodes them). Put the resolved config under ``attrs["config"]``
    so :func:`read_config` finds it.
    """
    path = Path(path)
    data: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        _check_name(name, "array")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"checkpoint array {name!r} has object dtype")
        data[name] = arr
    native, as_json = _encode_attrs(attrs)
    mode = _target_mode(path)

    tmp = _temp_path(path)
    try:
        with h5py.File(tmp, "w") as f:
            _write_checkpoint_h5(f, data, native, as_json)
            f.flush()
        _fsync_path(tmp)  # data must be on disk before the rename makes it visible
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and attrs exactly as given to :func:`save_checkpoint` (JSON attrs decoded).

    Numpy scalar attrs come back as the equivalent Python scalars; tuples come back as lists.
    """
    with _open_existing_h5(path, "checkpoint") as f:
        fmt = _decode_attr(f.attrs.get(_CKPT_FORMAT_ATTR, ""))
        if not str(fmt).startswith(CHECKPOINT_FORMAT_NAME + "/"):
            raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT_NAME} file")
        as_json = set(json.loads(_decode_attr(f.attrs[_CKPT_JSON_ATTR])))
        attrs: dict[str, Any] = {}
        for key, value in f.attrs.items():
            if key.startswith(_RESERVED_PREFIX):
                continue
            value = _decode_attr(value)
            attrs[key] = json.loads(value) if key in as_json else value
        arrays = {name: ds[...] for name, ds in f.items() if isinstance(ds, h5py.Dataset)}
    return arrays, attrs


# --------------------------------------------------------------------------------------------
# nested state dicts (e.g. a closure provider's per-cell state) inside checkpoints
# --------------------------------------------------------------------------------------------

_LEAF, _STR_LEAF, _USTR_LEAF = "@", "@str", "@ustr"  # ustr: numpy unicode array


def flatten_state(state: Mapping[str, Any], prefix: str) -> tuple[dict[str, np.ndarray], dict]:
    """Split a nested dict of arrays/scalars/strings into checkpoint arrays named
    ``prefix.key.subkey`` plus a JSON-able tree that :func:`unflatten_state` follows back
    (the tree keeps empty dicts and marks strings; numpy unicode arrays are stored UTF-8
    encoded and come back as unicode arrays). Keys may not contain ``.`` or ``/``."""
    arrays: dict[str, np.ndarray] = {}

    def walk(d, name):
        if not isinstance(d, Mapping):
            raise TypeError(f"state at {name!r} is {type(d).__name__}, expected a mapping")
        tree = {}
        for k, v in d.items():
            if not isinstance(k, str) or not k or "." in k or "/" in k:
                raise ValueError(f"state key {k!r} under {name!r} must be a non-empty string "
                                 "without '.' or '/'")
            full = f"{name}.{k}"
            if isinstance(v, Mapping):
                tree[k] = walk(v, full)
            elif isinstance(v, str):
                arrays[full] = np.bytes_(v.encode("utf-8"))
                tree[k] = _STR_LEAF
            elif isinstance(v, np.ndarray | np.str_) and np.asarray(v).dtype.kind == "U":
                arrays[full] = np.char.encode(np.asarray(v), "utf-8")  # HDF5 has no UCS-4
                tree[k] = _USTR_LEAF
            else:
                arr = np.asarray(v)
                if arr.dtype.kind not in "biufc":
                    raise TypeError(f"state entry {full!r} has dtype {arr.dtype}; only numeric "
                                    "arrays, scalars, strings and nested dicts are stored")
                arrays[full] = arr
                tree[k] = _LEAF
        return tree

    tree = walk(state, prefix)
    return arrays, tree


def unflatten_state(arrays: Mapping[str, np.ndarray], tree: Mapping, prefix: str) -> dict:
    """Inverse of :func:`flatten_state` (0-d arrays come back as numpy scalars)."""

    def walk(t, name):
        out: dict[str, Any] = {}
        for k, v in t.items():
            full = f"{name}.{k}"
            if isinstance(v, Mapping):
                out[k] = walk(v, full)
                continue
            if full not in arrays:
                raise KeyError(f"checkpoint lacks state entry {full!r}")
            a = arrays[full]
            if v == _USTR_LEAF:
                out[k] = np.char.decode(np.asarray(a), "utf-8")
            elif v == _STR_LEAF:
                raw = a[()] if isinstance(a, np.ndarray) else a
                out[k] = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            else:
                out[k] = a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a
        return out

    return walk(tree, prefix)
