"""`python -m azdsl`: the same as the `azdsl` command."""

import sys

from azdsl.cli import main

sys.exit(main())
