"""closure.files: the package's one atomic-write helper and one sha256 helper."""

from __future__ import annotations

import hashlib
import json
import os

import h5py
import numpy as np
import pytest

from closure.files import atomic_write, atomic_write_bytes, data_hash, sha256_of


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    p = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(p.parent) == ["a.bin"]
    assert p.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "t.h5"
    with atomic_write(p) as tmp, h5py.File(tmp, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(p) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5["x"] = np.arange(5)
        raise RuntimeError("disk full")
    with h5py.File(p, "r") as h5:
        assert h5["x"][:].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ["t.h5"]


def test_sha256_of_bytes_and_files_agree_with_hashlib(tmp_path):
    data = os.urandom(5 << 20)  # more than one read chunk
    p = tmp_path / "d.bin"
    p.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_of(data) == sha256_of(p) == sha256_of(str(p)) == want
    assert data_hash(p) == want
    p.with_name("d.bin.manifest.json").write_text("{}")  # a manifest stands for its file
    assert data_hash(p) == hashlib.sha256(b"{}").hexdigest()


def test_portable_paths_names_no_machine_directories(tmp_path, monkeypatch):
    from closure.files import ROOT, portable_paths

    monkeypatch.chdir(tmp_path)
    doc = {"a": str(ROOT / "data" / "x.h5"), "b": [str(tmp_path / "runs" / "r"), "/elsewhere/y"],
           "c": {"d": str(ROOT), "e": 3, "f": "relative/z"}}
    assert portable_paths(doc) == {"a": "data/x.h5", "b": ["runs/r", "/elsewhere/y"],
                                   "c": {"d": ".", "e": 3, "f": "relative/z"}}
    assert str(ROOT) not in json.dumps(portable_paths({"k": [str(ROOT / "q")]}))
