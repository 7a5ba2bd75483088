"""``python -m biotune_optuna.cli``: the console script (how ``run --workers`` starts workers)."""

import sys

from biotune_optuna.cli import main


sys.exit(main())
