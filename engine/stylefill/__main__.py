"""`python -m stylefill` is the `stylefill` command."""

import sys

from .cli import main

sys.exit(main())
