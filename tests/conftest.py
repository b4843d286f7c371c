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
