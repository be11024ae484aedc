"""`python -m modelfp.steps <verb> ...`: the workflow's command line (modelfp.steps)."""
import sys

from . import main

sys.exit(main())
