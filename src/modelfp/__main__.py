"""`python -m modelfp`: the people's command line, as the `modelfp` script (modelfp.cli)."""
import sys

from .cli import main

sys.exit(main())
