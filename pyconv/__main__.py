"""``python -m pyconv train ...`` runs the ``pyconv`` command (see :mod:`pyconv.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
