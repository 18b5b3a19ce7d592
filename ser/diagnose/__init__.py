"""``python -m ser.diagnose run=<run dir>``: why is the model misclassifying? ``ser.diagnose.core.diagnose`` runs
it from Python; ``ser/diagnose/check.py`` is what a check is."""
