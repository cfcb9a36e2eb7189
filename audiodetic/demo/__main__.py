"""``python -m audiodetic.demo [options]``: the same as ``audiodetic demo``."""

import sys

from audiodetic.demo.launch import main

sys.exit(main())
