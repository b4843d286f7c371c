import atexit
import os
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..",
                                                      ".numba_cache"))
# the kernel-dispatch calibrations of the tests' models go to a directory of this session (and
# of the subprocesses it starts), not to the user's cache
_cache = tempfile.mkdtemp(prefix="closure-test-cache-")
os.environ["CLOSURE_CACHE_DIR"] = _cache
atexit.register(shutil.rmtree, _cache, ignore_errors=True)

# Random inputs of the kernel tests are fresh every session and replayable: the session seed is
# printed in the report header; TEST_SEED=<seed> replays it (each test draws from the seed and
# its own name, so one test can be rerun alone).
TEST_SEED = int(os.environ.get("TEST_SEED") or int.from_bytes(os.urandom(4), "little"))


def pytest_report_header(config):
    return f"random inputs: TEST_SEED={TEST_SEED} (set it to replay)"


def seeded_rng(nodeid: str):
    """A NumPy generator for one test: the session seed and the test's id."""
    import zlib

    import numpy as np

    return np.random.default_rng([TEST_SEED, zlib.crc32(nodeid.encode())])


def pytest_terminal_summary(terminalreporter):
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.write_line(f"random inputs: TEST_SEED={TEST_SEED} (set it to replay)")
