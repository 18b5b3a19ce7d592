"""Silence the known, harmless noise of the libraries, narrowly (by message and source), so that what
is left in a run's log is worth reading."""

from __future__ import annotations

import logging
import warnings


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


_LITLOGGER = _DropMessages("litlogger")


def silence_known_noise() -> None:
    """Idempotent. Drops: Lightning's tip to install litlogger; torch's ``LeafSpec`` deprecation, which
    Lightning 2.6 triggers on every step; TensorBoard's directory-watcher chatter while ``ser.diagnose``
    reads a run's curves; Lightning's note that an epoch has fewer batches than its
    logging interval; the second copy of each Lightning log line."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
    # small training sets (a diagnosis's learning curve, a tiny corpus) log once per epoch instead: fine
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _LITLOGGER not in rank_zero.filters:
        rank_zero.addFilter(_LITLOGGER)
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    # `import lightning` gives its logger a console handler of its own ("INFO: ..."); where the root
    # logger already prints (Hydra's job logging, basicConfig), every Lightning line came out twice.
    if logging.getLogger().handlers:
        package = logging.getLogger("lightning")
        for handler in list(package.handlers):
            if type(handler) is logging.StreamHandler:
                package.removeHandler(handler)
