"""``python -m ser.diagnose run=<run dir>``: why is the model misclassifying? See ``ser.diagnose.core``."""

from ser.diagnose.core import diagnose

__all__ = ["diagnose"]
