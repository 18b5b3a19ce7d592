"""Collect the study's cv_summary.json files into one Markdown table: python table.py <study dir>."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print("| run | overrides | UA mean ± std | WA mean ± std | macro-F1 mean ± std | pooled UA | wall |")
print("|---|---|---|---|---|---|---|")
for run in sorted(out.iterdir(), key=lambda p: p.stat().st_mtime):
    summary_file = run / "cv_summary.json"
    if not summary_file.exists():
        continue
    s = json.loads(summary_file.read_text())
    overrides = (run / ".hydra" / "overrides.yaml").read_text().splitlines()
    knobs = " ".join(o[2:] for o in overrides if o[2:].split("=")[0] in ("features", "loss.class_weighted", "augment"))
    cells = [f"{s['mean'][k]:.3f} ± {s['std'][k]:.3f}" for k in ("test/ua", "test/wa", "test/macro_f1")]
    wall = (run / "wall_s.txt").read_text().strip() + " s" if (run / "wall_s.txt").exists() else ""
    print(f"| {run.name} | `{knobs}` | " + " | ".join(cells) + f" | {s['pooled']['ua']:.3f} | {wall} |")
