"""`python -m pss ...` (and `torchrun ... -m pss train ...`): the `pss` command."""

import sys

from .cli import main

sys.exit(main())
