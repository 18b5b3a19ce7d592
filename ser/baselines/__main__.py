"""``python -m ser.baselines``: see ``ser/baselines/__init__.py``."""

from ser.baselines.run import main

main()
