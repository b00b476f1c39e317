"""``python -m booktools.notebooks``: the chapters' notebooks (``make notebooks``, ``make check``)."""

import sys

from booktools.notebooks import main

sys.exit(main())
