"""``python -m closure``: the ``closure`` command (:mod:`closure.cli`)."""

import sys

from closure.cli import main

sys.exit(main())
