"""A table of every job of a Hydra multirun: its overrides and val/test UA, WA, macro-F1.

Written into the sweep dir (``summary.md``, ``summary.csv``) by the ``SweepSummary`` Hydra
callback after every multirun, or by hand: ``python -m ser.sweep_summary <multirun dir>``.
Rows are sorted by validation UA (the selection metric), best first. For tables over many runs
and sweeps, grouped over seeds and with a paired test, use ``python -m ser.results <dir>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from ser import rundir

COLUMNS = ("val/ua", "test/ua", "test/wa", "test/macro_f1")


def collect(sweep_dir: Path) -> list[dict]:
    """One row per job folder holding ``metrics.json``; failed jobs appear with status ``failed``."""
    rows = []
    for job in sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir() and (p / ".hydra").is_dir()),
                      key=lambda p: (len(p.name), p.name)):
        overrides = rundir.read_overrides(job) if (job / ".hydra" / "overrides.yaml").is_file() else []
        row = {"job": job.name, "overrides": " ".join(overrides), "status": "ok"}
        metrics, status = rundir.read_json(job / rundir.METRICS), rundir.read_status(job)
        if metrics is not None and status.get("status", "finished") == "finished":
            row |= {k: metrics.get(k) for k in COLUMNS}
        else:  # failed, interrupted or still running: labelled, with the reason train.py recorded
            reason = f": {status['error']}" if status.get("error") else ""
            row |= {k: None for k in COLUMNS} | {"status": status.get("status", "failed") + reason}
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["val/ua"] if r["val/ua"] is not None else -1))


def write(sweep_dir: Path, rows: list[dict]) -> None:
    sweep_dir = Path(sweep_dir)
    fields = ["job", "overrides", *COLUMNS, "status"]
    rundir.write_rows(sweep_dir / "summary.csv", fields, rows)
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    lines = [f"# Sweep summary: {sweep_dir}", "", f"{len(rows)} jobs, sorted by val/ua.", "",
             "| job | overrides | " + " | ".join(COLUMNS) + " | status |", "|---" * (len(COLUMNS) + 3) + "|"]
    lines += [f"| {r['job']} | `{r['overrides']}` | " + " | ".join(fmt(r[k]) for k in COLUMNS) + f" | {r['status']} |"
              for r in rows]
    rundir.write_text(sweep_dir / "summary.md", "\n".join(lines) + "\n")


class SweepSummary(Callback):
    """Hydra callback: writes the summary when a multirun ends."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = collect(sweep_dir)
            write(sweep_dir, rows)
            print(f"sweep summary ({len(rows)} jobs): {sweep_dir / 'summary.md'}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        sys.exit("usage: python -m ser.sweep_summary <multirun dir>")
    rows = collect(Path(args[0]))
    write(Path(args[0]), rows)
    print((Path(args[0]) / "summary.md").read_text())


if __name__ == "__main__":
    main()
