"""Train and test one experiment: ``python train.py model=lstm features=mfcc ...``.

Every ``key=value`` is checked before Hydra starts (unknown keys name the valid ones and the
closest match; values of the wrong kind name the default), and every component is built before
any data is loaded. A mistake ends in one message and exit status 2 (``HYDRA_FULL_ERROR=1`` shows
the traceback); the run folder's ``status.json`` says ``failed`` and why.
"""

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from ser.cli import check_overrides, config_errors, short, user_errors

log = logging.getLogger("train")
# Hydra's own flags; those that take a value take the next word unless written --flag=value.
FLAGS_WITH_VALUE = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "-c", "--cfg", "-p",
                    "--package", "--experimental-rerun", "-i", "--info"}
HYDRA_ONLY = {"-h", "--help", "--hydra-help", "--version", "-sc", "--shell-completion", "-i", "--info",
              "--experimental-rerun", "-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"}


def command_overrides(argv: list[str]) -> list[str] | None:
    """The ``key=value`` words of a training command line; None where Hydra alone handles it (help, info)."""
    words, skip = [], False
    for word in argv:
        flag = word.split("=", 1)[0]
        if skip:
            skip = False
        elif flag in HYDRA_ONLY:
            return None
        elif word.startswith("-"):
            skip = flag in FLAGS_WITH_VALUE and "=" not in word
        else:
            words.append(word)
    return words


def to_log_file(level: int, message: str) -> None:
    """Only into the log files (the console gets the short message from :func:`fail`)."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def fail(err: BaseException) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    print(f"train.py: error: {short(err)}\n(`python train.py --help` lists the options; HYDRA_FULL_ERROR=1 shows "
          "the traceback)", file=sys.stderr)
    sys.exit(2)


def check_command_line() -> None:
    """A mistaken ``key=value`` ends here, in a second, before torch and Lightning are imported."""
    overrides = command_overrides(sys.argv[1:])
    if overrides is not None:
        try:
            check_overrides("train", overrides)
        except config_errors() as err:
            fail(err)


if __name__ == "__main__":
    check_command_line()

from ser.train import train  # noqa: E402  torch and Lightning: seconds to import, once the command line is good


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except user_errors() as err:
        to_log_file(logging.ERROR, f"{type(err).__name__}: {short(err)}")  # the run's train.log keeps the reason too
        fail(err)
    # Sweepers (Optuna) maximise what main returns.
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    hydra_main()
