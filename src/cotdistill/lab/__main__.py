"""`python -m cotdistill.lab ...`: the lab dataset command, until the main CLI registers it."""

import sys

from .cli import main

sys.exit(main())
