"""``python -m ser.diagnose run=<run dir>``: why is the model misclassifying? See ``ser.diagnose.core``."""


def __getattr__(name: str):
    # ``diagnose`` pulls in torch and Lightning (seconds); ``python -m ser.diagnose --help`` should not wait for them.
    if name == "diagnose":
        from ser.diagnose.core import diagnose

        return diagnose
    raise AttributeError(name)


__all__ = ["diagnose"]
