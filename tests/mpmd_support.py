"""Worker-side provider for tests/test_mpmd.py: the MPI test provider with ``release``."""

import numpy as np
from mpi_support import MockProvider


class ReleasingMock(MockProvider):
    def release(self, ids):
        keep = ~np.isin(self.ids, np.asarray(ids))
        self.ids, self.ps, self.age = self.ids[keep], self.ps[keep], self.age[keep]
        return int((~keep).sum())
