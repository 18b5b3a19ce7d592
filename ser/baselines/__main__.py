"""``python -m ser.baselines``: see ``ser/baselines/__init__.py``."""

import sys

from ser.baselines.run import main

result = main()
sys.exit(result if isinstance(result, int) else 0)
