"""``python -m search.cli ...``: the ``lars-search`` command (how :mod:`search.run.workers` starts a worker)."""

import sys

from search.cli.command import main

if __name__ == "__main__":
    sys.exit(main())
