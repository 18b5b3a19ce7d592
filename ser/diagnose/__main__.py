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

from omegaconf import DictConfig, OmegaConf

from ser.cli import run_command

OWN = ("run", "device", "out", "snrs", "occlude", "probes", "retrain", "budget_s", "verify", "verify_top")


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
    # inject.* is training's top-level group; the stored run config keeps it under data.inject
    return [f"data.{p}" if p.startswith("inject.") else p for p in out]


def diagnose_command(cfg: DictConfig) -> int:
    from ser.diagnose.core import diagnose  # torch and Lightning: imported once the options are known good

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = diagnose(cfg.run, patches(cfg), device=cfg.device, snrs=tuple(float(s) for s in cfg.snrs), out=cfg.out,
                      occlude=cfg.occlude, probes=cfg.probes, retrain=str(cfg.retrain),
                      budget_s=cfg.budget_s, verify=bool(cfg.verify), verify_top=int(cfg.verify_top))
    print(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m ser.diagnose", __doc__, "diagnose", diagnose_command, argv)


if __name__ == "__main__":
    sys.exit(main())
