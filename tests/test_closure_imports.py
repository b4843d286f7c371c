"""The closure's serving path (``Closure.load()`` + a table-mode query) stays lean: it imports
neither the hydrocode's solver nor any Numba kernel, nor the training or data-generation code.
Checked in a fresh interpreter through ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, sys
import numpy as np
import closure
c = closure.Closure.load()
r = c.query(np.arange(8, dtype=np.int64), np.full(8, 9e9), 1e-10)
r = c.query(np.arange(8, dtype=np.int64), np.full(8, 9e9), 2e-10)
assert (r.status == 0).all()
print(json.dumps(sorted(sys.modules)))
"""


def test_load_and_table_query_import_no_solver_numba_training_or_generator():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    mods = json.loads(r.stdout.strip().splitlines()[-1])
    assert "closure.api" in mods and "closure.table" in mods  # the path did run
    macro = [m for m in mods if m == "macro" or m.startswith("macro.")]
    assert set(macro) <= {"macro", "macro.cellstore"}, macro
    banned = ("numba", "closure.training", "closure.data.collapse", "closure.data.geometry",
              "closure.train", "closure.cli")
    bad = [m for m in mods if any(m == b or m.startswith(b + ".") for b in banned)]
    assert bad == []
