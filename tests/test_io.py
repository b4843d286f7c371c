"""Tests for macro.io: HDF5 output + XDMF sidecar, atomic checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest

from macro import io as mio
from macro.io import (
    GridSpec,
    OutputWriter,
    atomic_write_bytes,
    load_checkpoint,
    read_config,
    read_final,
    read_frame,
    read_times,
    save_checkpoint,
    write_xdmf,
)

GRID_1D = GridSpec(nx=16, ny=1, dx=0.125, dy=0.125, x0=-1.0)
GRID_2D = GridSpec(nx=7, ny=5, dx=0.5, dy=0.25, x0=1.0, y0=-2.0)
CONFIG = {"cfl": 0.4, "eos": {"kind": "ideal", "gamma": 1.4}, "nx": 16, "name": "sod"}


def _fields(grid: GridSpec, k: int) -> dict[str, np.ndarray]:
    """Fields whose values encode position and frame, so layout mistakes show up."""
    x, y = grid.cell_centers()
    xx, yy = np.meshgrid(x, y)
    return {"xc": (xx + k).reshape(grid.shape), "yc": yy.reshape(grid.shape)}


def _write_run(path: Path, grid: GridSpec, nframes: int = 3, final: bool = True) -> list[float]:
    times = [0.1 * k for k in range(nframes)]
    with OutputWriter(path, grid, CONFIG) as w:
        for k, t in enumerate(times):
            w.write_frame(t, 10 * k, _fields(grid, k))
        if final:
            w.write_final(1.0, 99, _fields(grid, -1))
    return times


# --------------------------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------------------------


def test_gridspec_centres_and_ndim() -> None:
    x, y = GRID_2D.cell_centers()
    np.testing.assert_allclose(x, 1.0 + 0.5 * (np.arange(7) + 0.5))
    np.testing.assert_allclose(y, -2.0 + 0.25 * (np.arange(5) + 0.5))
    assert GRID_2D.ndim == 2 and GRID_2D.shape == (5, 7)
    assert GRID_1D.ndim == 1 and GRID_1D.shape == (16,)
    assert GRID_1D.cell_centers()[1].shape == (1,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nx": 0, "ny": 1, "dx": 1.0, "dy": 1.0},
        {"nx": 4, "ny": 1, "dx": 0.0, "dy": 1.0},
        {"nx": 4, "ny": 3, "dx": 1.0, "dy": 0.0},
        {"nx": 4, "ny": 3, "dx": float("nan"), "dy": 1.0},
    ],
)
def test_gridspec_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GridSpec(**kwargs)


# --------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [GRID_1D, GRID_2D], ids=["1d", "2d"])
def test_writer_round_trip(tmp_path: Path, grid: GridSpec) -> None:
    path = tmp_path / "run.h5"
    times = _write_run(path, grid)

    np.testing.assert_array_equal(read_times(path), times)
    assert read_config(path) == CONFIG
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["config"]) == CONFIG
        assert f.attrs["config"] == json.dumps(CONFIG, sort_keys=True)
        assert isinstance(f.attrs["created"], str) and "T" in f.attrs["created"]
        for key, value in grid.attrs().items():
            assert f.attrs[key] == value
        x, y = grid.cell_centers()
        np.testing.assert_array_equal(f["x"][...], x)
        np.testing.assert_array_equal(f["y"][...], y)
        np.testing.assert_array_equal(f["frames/steps"][...], [0, 10, 20])
        assert sorted(k for k in f["frames"] if k.isdigit()) == ["000000", "000001", "000002"]
        g = f["frames/000001"]
        assert g.attrs["time"] == times[1] and g.attrs["step"] == 10
        assert g["xc"].dtype == np.float64 and g["xc"].shape == grid.shape

    for k in range(len(times)):
        t, step, fields = read_frame(path, k)
        assert (t, step) == (times[k], 10 * k)
        for name, expected in _fields(grid, k).items():
            np.testing.assert_array_equal(fields[name], expected)
    t, step, fields = read_final(path)
    assert (t, step) == (1.0, 99)
    np.testing.assert_array_equal(fields["xc"], _fields(grid, -1)["xc"])
    assert GridSpec.from_attrs(h5py.File(path, "r").attrs) == grid


def test_writer_casts_to_float64(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with OutputWriter(path, GRID_1D, CONFIG) as w:
        w.write_frame(0.0, 0, {"mat": np.arange(16, dtype=np.int32)})
    _, _, fields = read_frame(path, 0)
    assert fields["mat"].dtype == np.float64
    np.testing.assert_array_equal(fields["mat"], np.arange(16))


@pytest.mark.parametrize(
    ("grid", "bad_shape"),
    [(GRID_1D, (1, 16)), (GRID_1D, (15,)), (GRID_2D, (7, 5)), (GRID_2D, (35,))],
)
def test_wrong_frame_shape_raises(tmp_path: Path, grid: GridSpec, bad_shape: tuple) -> None:
    with OutputWriter(tmp_path / "run.h5", grid, CONFIG) as w:
        good = _fields(grid, 0)
        with pytest.raises(ValueError, match=r"'pressure'.*expected \(") as info:
            w.write_frame(0.0, 0, {**good, "pressure": np.zeros(bad_shape)})
        assert str(grid.shape) in str(info.value)
        # Validation happens before writing: no half-written frame is left behind.
        assert w.nframes == 0
        with pytest.raises(ValueError, match="'rho'"):
            w.write_final(0.0, 0, {"rho": np.zeros(bad_shape)})
        w.write_frame(0.0, 0, good)
        assert w.nframes == 1


def test_frame_times_must_increase(tmp_path: Path) -> None:
    with OutputWriter(tmp_path / "run.h5", GRID_1D, CONFIG) as w:
        w.write_frame(0.5, 5, _fields(GRID_1D, 0))
        with pytest.raises(ValueError, match="not after"):
            w.write_frame(0.5, 6, _fields(GRID_1D, 0))


def test_writer_flushes_each_frame(tmp_path: Path) -> None:
    """A run that dies without close() still leaves every finished frame readable."""
    path = tmp_path / "run.h5"
    w = OutputWriter(path, GRID_2D, CONFIG)
    w.write_frame(0.0, 0, _fields(GRID_2D, 0))
    w.write_frame(0.1, 1, _fields(GRID_2D, 1))
    # Snapshot the bytes on disk while the writer is still open, as a crash would leave them.
    snapshot = tmp_path / "snapshot.h5"
    shutil.copyfile(path, snapshot)
    with h5py.File(snapshot, "r") as f:
        np.testing.assert_array_equal(f["frames/times"][...], [0.0, 0.1])
        np.testing.assert_array_equal(f["frames/000001/xc"][...], _fields(GRID_2D, 1)["xc"])
    w.close()
    w.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        w.write_frame(0.2, 2, _fields(GRID_2D, 2))


def test_append_mode_resumes_and_drops_stale_frames(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _write_run(path, GRID_1D, nframes=4, final=False)  # times 0, .1, .2, .3
    new_config = {**CONFIG, "t_end": 2.0}
    # Restart from a checkpoint at t=0.15: frames at 0.2 and 0.3 are from the dead run.
    with OutputWriter(path, GRID_1D, new_config, mode="a") as w:
        assert w.nframes == 4
        w.write_frame(0.2, 20, _fields(GRID_1D, 7))
        assert w.nframes == 3
    np.testing.assert_allclose(read_times(path), [0.0, 0.1, 0.2])
    t, step, fields = read_frame(path, -1)
    assert (t, step) == (0.2, 20)
    np.testing.assert_array_equal(fields["xc"], _fields(GRID_1D, 7)["xc"])
    assert read_config(path) == new_config
    with pytest.raises(ValueError, match="grid"):
        OutputWriter(path, GRID_2D, CONFIG, mode="a")


def test_context_manager_closes_on_error(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(ZeroDivisionError):
        with OutputWriter(path, GRID_1D, CONFIG) as w:
            w.write_frame(0.0, 0, _fields(GRID_1D, 0))
            1 / 0  # noqa: B018
    assert path.with_suffix(".xmf").exists()
    np.testing.assert_array_equal(read_times(path), [0.0])


# --------------------------------------------------------------------------------------------
# XDMF
# --------------------------------------------------------------------------------------------


def _dims(elem: ET.Element) -> tuple[int, ...]:
    return tuple(int(v) for v in elem.get("Dimensions", "").split())


def _floats(elem: ET.Element) -> list[float]:
    return [float(v) for v in (elem.text or "").split()]


@pytest.mark.parametrize("grid", [GRID_1D, GRID_2D], ids=["1d", "2d"])
def test_xdmf_sidecar_structure(tmp_path: Path, grid: GridSpec) -> None:
    path = tmp_path / "run.h5"
    times = _write_run(path, grid)
    xmf = path.with_suffix(".xmf")
    assert xmf.exists()

    root = ET.parse(xmf).getroot()
    assert root.tag == "Xdmf"
    collection = root.find("Domain/Grid")
    assert collection is not None
    assert collection.get("GridType") == "Collection"
    assert collection.get("CollectionType") == "Temporal"
    grids = collection.findall("Grid")
    # One grid per frame, plus /final (its time 1.0 differs from every frame time).
    assert len(grids) == len(times) + 1
    assert [float(g.find("Time").get("Value")) for g in grids] == [*times, 1.0]

    with h5py.File(path, "r") as f:
        for g in grids:
            assert g.get("GridType") == "Uniform"
            topo = g.find("Topology")
            assert topo.get("TopologyType") == "2DCoRectMesh"
            # Node counts (cells + 1), slowest axis (y) first; a 1D run is one cell thick.
            assert _dims(topo) == (grid.ny + 1, grid.nx + 1)
            geo = g.find("Geometry")
            assert geo.get("GeometryType") == "ORIGIN_DXDY"
            origin, spacing = geo.findall("DataItem")
            assert _floats(origin) == [grid.y0, grid.x0]  # domain corner, (y, x) order
            assert _floats(spacing) == [grid.dy, grid.dx]
            attrs = g.findall("Attribute")
            assert {a.get("Name") for a in attrs} == {"xc", "yc"}
            for a in attrs:
                assert a.get("Center") == "Cell"
                item = a.find("DataItem")
                assert item.get("Format") == "HDF"
                assert item.get("Precision") == "8" and item.get("NumberType") == "Float"
                fname, dset = item.text.strip().split(":", 1)
                assert fname == "run.h5"  # relative, so the pair can be moved together
                assert dset in f
                assert f[dset].shape == grid.shape
                assert _dims(item) == (grid.ny, grid.nx)  # cells = nodes - 1 per axis
                assert np.prod(_dims(item)) == f[dset].size


def test_xdmf_skips_final_at_frame_time(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with OutputWriter(path, GRID_2D, CONFIG) as w:
        w.write_frame(0.0, 0, _fields(GRID_2D, 0))
        w.write_frame(0.5, 5, _fields(GRID_2D, 1))
        w.write_final(0.5, 5, _fields(GRID_2D, 1))
    grids = ET.parse(path.with_suffix(".xmf")).getroot().findall("Domain/Grid/Grid")
    assert len(grids) == 2


def test_write_xdmf_relative_path_and_explicit_target(tmp_path: Path) -> None:
    path = tmp_path / "data" / "run.h5"
    path.parent.mkdir()
    _write_run(path, GRID_2D, nframes=2, final=False)
    (tmp_path / "views").mkdir()
    out = write_xdmf(path, tmp_path / "views" / "run_view.xmf")
    assert out == tmp_path / "views" / "run_view.xmf"
    item = ET.parse(out).getroot().find("Domain/Grid/Grid/Attribute/DataItem")
    fname = item.text.strip().split(":", 1)[0]
    assert fname == "../data/run.h5"
    assert (out.parent / fname).resolve() == path.resolve()


def test_xdmf_readable_by_vtk(tmp_path: Path) -> None:
    """Open the sidecar with VTK's XDMF reader (as ParaView does) when VTK is installed."""
    pytest.importorskip("vtkmodules.vtkIOXdmf2")
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersCore import vtkCellCenters
    from vtkmodules.vtkIOXdmf2 import vtkXdmfReader

    for grid in (GRID_1D, GRID_2D):
        path = tmp_path / f"run{grid.ndim}.h5"
        times = _write_run(path, grid, final=False)
        reader = vtkXdmfReader()
        reader.SetFileName(str(path.with_suffix(".xmf")))
        for k, t in enumerate(times):
            reader.UpdateTimeStep(t)
            data = reader.GetOutputDataObject(0)
            assert data.GetNumberOfCells() == grid.nx * grid.ny
            centres = vtkCellCenters()
            centres.SetInputData(data)
            centres.Update()
            pts = vtk_to_numpy(centres.GetOutput().GetPoints().GetData())
            xc = vtk_to_numpy(data.GetCellData().GetArray("xc"))
            # A 2D CoRectMesh lands in VTK's (y, z) plane: XDMF (y, x) -> VTK (z, y).
            np.testing.assert_allclose(xc - k, pts[:, 1], atol=1e-12)
            if grid.ndim == 2:
                yc = vtk_to_numpy(data.GetCellData().GetArray("yc"))
                np.testing.assert_allclose(yc, pts[:, 2], atol=1e-12)


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


def _checkpoint_payload(seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    rng = np.random.default_rng(seed)
    arrays = {
        "U": rng.standard_normal((4, 9, 11)),
        "phi": rng.random(37).astype(np.float32),
        "ids": rng.integers(-(2**40), 2**40, size=(3, 5), dtype=np.int64),
        "flags": rng.random(6) > 0.5,
        "scalar": np.array(np.pi),
        "big_endian": np.arange(5, dtype=">f8"),
    }
    arrays["U"][0, 0, 0] = np.nan
    arrays["U"][0, 0, 1] = -0.0
    attrs = {
        "t": 0.1 + 0.2,
        "step": 1234,
        "restart_count": np.int64(2),
        "converged": True,
        "name": "sod-shock",
        "config": {"cfl": 0.4, "eos": {"gamma": 1.4, "kind": "ideal"}, "bc": ["wall", "outflow"]},
        "history": [1, 2.5, "x"],
        "nothing": None,
        "seeds": np.array([1, 2, 3]),
    }
    return arrays, attrs


def test_checkpoint_round_trip_bit_identical(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.h5"
    arrays, attrs = _checkpoint_payload()
    save_checkpoint(path, arrays, attrs)
    loaded, lattrs = load_checkpoint(path)

    assert loaded.keys() == arrays.keys()
    for name, arr in arrays.items():
        assert loaded[name].dtype == arr.dtype, name
        assert loaded[name].shape == arr.shape, name
        assert loaded[name].tobytes() == arr.tobytes(), name  # bit-exact, NaN and -0.0 included

    assert lattrs.keys() == attrs.keys()
    np.testing.assert_array_equal(lattrs.pop("seeds"), attrs["seeds"])
    for key, value in lattrs.items():
        assert value == attrs[key], key
        assert type(value) is type(attrs[key]) or isinstance(attrs[key], np.generic), key
    assert type(lattrs["restart_count"]) is int
    assert read_config(path) == attrs["config"]
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_checkpoint_overwrite_keeps_latest(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.h5"
    save_checkpoint(path, {"a": np.zeros(3)}, {"step": 1})
    os.chmod(path, 0o640)
    save_checkpoint(path, {"b": np.ones(2)}, {"step": 2})
    arrays, attrs = load_checkpoint(path)
    assert list(arrays) == ["b"] and attrs == {"step": 2}
    assert (path.stat().st_mode & 0o777) == 0o640  # replacement keeps permissions


def test_checkpoint_failure_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.h5"
    arrays, attrs = _checkpoint_payload(seed=1)
    save_checkpoint(path, arrays, attrs)
    before = path.read_bytes()

    seen: list[Path] = []
    real_write = mio._write_checkpoint_h5

    def failing_write(f: h5py.File, *args: object) -> None:
        seen.append(Path(f.filename))
        real_write(f, *args)  # write a full payload into the temp file, then die
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(mio, "_write_checkpoint_h5", failing_write)
    new_arrays, new_attrs = _checkpoint_payload(seed=2)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, new_arrays, new_attrs)

    assert seen and seen[0] != path and seen[0].parent == tmp_path  # a temp file was used
    assert not seen[0].exists()
    assert sorted(tmp_path.iterdir()) == [path]  # no temp files remain
    assert path.read_bytes() == before
    loaded, _ = load_checkpoint(path)
    assert loaded["U"].tobytes() == arrays["U"].tobytes()


def test_checkpoint_failure_in_replace_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.h5"
    save_checkpoint(path, {"a": np.arange(4.0)}, {"step": 1})
    before = path.read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(mio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"a": np.arange(8.0)}, {"step": 2})
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == before


def test_checkpoint_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_config(missing)


def test_checkpoint_rejects_bad_attrs(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.h5"
    with pytest.raises(TypeError, match="'obj'"):
        save_checkpoint(path, {}, {"obj": object()})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(path, {}, {"__macro_json_attrs__": "x"})
    with pytest.raises(ValueError, match="array name"):
        save_checkpoint(path, {"a/b": np.zeros(2)}, {})
    assert list(tmp_path.iterdir()) == []


def test_load_checkpoint_rejects_output_file(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _write_run(path, GRID_1D, nframes=1, final=False)
    with pytest.raises(ValueError, match="not a macro-checkpoint"):
        load_checkpoint(path)


# --------------------------------------------------------------------------------------------
# atomic_write_bytes
# --------------------------------------------------------------------------------------------


def test_atomic_write_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.txt"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"

    def failing_fsync(fd: int) -> None:
        raise OSError("fsync failed (simulated)")

    monkeypatch.setattr(mio.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(path, b"three")
    assert path.read_bytes() == b"two"
    assert sorted(tmp_path.iterdir()) == [path]
