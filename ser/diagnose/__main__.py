"""usage: python -m ser.diagnose run=<run dir> [device=cpu] [out=<dir>] [snrs=[40,20,10,5,0]] [probes=true]
                          [retrain=auto] [verify=true verify_top=2] [data.root=<dir>]
                          [inject.test_channel=telephone ...]

Why a trained run misclassifies: evaluates every fold's tested checkpoint on its test split, runs
every check (ser/diagnose/checks/) and writes <run>/diagnosis/report.md (causes ranked by the UA
each costs), diagnosis.json, suspect_labels.csv, PNG figures and a TensorBoard log of the figures.
Options come from conf/diagnose.yaml.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import fields

from omegaconf import DictConfig, OmegaConf

from ser.cli import check_early, run_command

PROG = "python -m ser.diagnose"
if __name__ == "__main__":  # --help and a mistaken option are answered before torch and Lightning load (seconds)
    check_early(PROG, __doc__, "diagnose", sys.argv[1:])

from ser.diagnose.context import Options  # noqa: E402
from ser.diagnose.core import diagnose  # noqa: E402

# diagnose's own options (conf/diagnose.yaml): run= and those of Options; every other key patches the run's config
OWN = ("run", *(f.name for f in fields(Options) if f.name not in ("overrides", "bootstrap", "seed")))


def patches(cfg: DictConfig) -> list[str]:
    """``key=value`` patches to the run's stored config: every option that is not diagnose's own and is set."""
    flat = OmegaConf.to_container(cfg, resolve=True)
    out = []

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif value is not None:
                out.append(f"{prefix}{key}={value}")

    walk({k: v for k, v in flat.items() if k not in OWN}, "")
    return out


def options_of(cfg: DictConfig) -> Options:
    """The diagnosis's ``Options`` from its composed config (``conf/diagnose.yaml`` with the command line)."""
    own = {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in OWN if k != "run"}
    return Options(overrides=tuple(patches(cfg)), **own)


def diagnose_command(cfg: DictConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(diagnose(cfg.run, options_of(cfg)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, __doc__, "diagnose", diagnose_command, argv)


if __name__ == "__main__":
    sys.exit(main())
