"""``python -m coupling.cli``: the `neurofem` command without the console script."""

import sys

from coupling.cli import main

sys.exit(main())
