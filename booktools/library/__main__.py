"""``python -m booktools.library``: regenerate d2l_lib/core.py from the chapters (``make lib``)."""

import sys

from booktools.library import main

sys.exit(main())
