"""Rank the checks' findings and write ``report.md``, ``diagnosis.json`` and the figures: loops over checks."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from ser import rundir
from ser import stats as S
from ser.diagnose.check import EXPLAINS, REPORT_ABOVE
from ser.diagnose.evidence import Evidence, Finding
from ser.plots import plt


def tier(f: Finding) -> int:
    """0: an interval above zero; 1: no interval measured (sure by its size only); 2: an interval reaching zero.
    A cause without a measured interval never outranks one whose interval says it is there."""
    if f.interval is None:
        return 1 if f.sure == "strong" else 2
    return 0 if f.sure == "strong" else 2


def explains(cause: Finding, consequence: Finding) -> bool:
    """``cause`` explains ``consequence``: the consequence names it (``explained_by``), the evidence is sure of it,
    and it is large enough to account for the consequence (underfitting that a probe on the same features beats
    by 0.35 is not explained by features 0.05 weaker than a reference), or the consequence was measured through it
    (``measured_through``: whatever its size, the measurement cannot tell the two apart)."""
    return (cause.id in consequence.explained_by and cause.sure == "strong"
            and (cause.score >= EXPLAINS * consequence.score or cause.id in consequence.measured_through))


def _roots(ordered: list[Finding], causes: list[Finding]) -> list[Finding]:
    """The placed causes that nothing explains."""
    return [g for g in ordered if not any(explains(c, g) for c in causes)]


def _key(f: Finding) -> tuple[int, float]:
    """Where a finding ranks on its own: by ``tier``, then by the UA at stake."""
    return tier(f), -f.score


def rank(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(causes costing at least ``REPORT_ABOVE`` UA by ``tier`` then by the UA at stake, each consequence after the
    causes that explain it (``explains``) and never above what ranks before it on its own: an explanation moves a
    consequence down, never up (a weak too-little-data after label noise does not pass a strong imbalance);
    risks, largest first)."""
    causes = sorted((f for f in findings if f.kind == "cause" and f.score >= REPORT_ABOVE), key=_key)
    ordered = [f for f in causes if not any(explains(c, f) for c in causes)]
    waiting = [f for f in causes if f not in ordered]
    while waiting:  # a consequence goes after the last of its explaining causes placed (chains: labels -> data -> fit)
        f = next((f for f in waiting if any(explains(g, f) for g in ordered)), waiting[0])
        after = [k for k, g in enumerate(ordered) if explains(g, f)]
        at = max(after) + 1 if after else len(ordered)
        while at < len(ordered) and (ordered[at] not in _roots(ordered, causes) or _key(ordered[at]) < _key(f)):
            at += 1  # after the consequences placed there before it, and after what ranks above it on its own
        ordered.insert(at, f)
        waiting.remove(f)
    risks = sorted((f for f in findings if f.kind != "cause"), key=lambda f: -f.score)
    return ordered, risks


def write(ev: Evidence, checks, out: Path, title: str, tensorboard: bool = True) -> Path:
    """``report.md``, ``diagnosis.json``, the checks' figures and files in ``out``; figures also to ``out/tensorboard``."""
    out.mkdir(parents=True, exist_ok=True)
    judged = [(check.name, f) for check in checks for f in check.judge(ev.measured[check.name], ev)]
    by = {id(f): name for name, f in judged}  # which check found what: verify asks it what the advice should improve
    causes, risks = rank([f for _, f in judged])
    write_figures(ev, checks, out, tensorboard)
    for check in checks:
        check.write(ev.measured[check.name], out)
    summary = {
        "title": title, "class_names": ev.class_names, "n": ev.n, "folds": [f.fold for f in ev.folds],
        "ua": ev.ua, "wa": ev.wa, "macro_f1": ev.macro_f1, "chance": 1 / ev.C,
        "causes": [f.as_dict() | {"check": by[id(f)]} for f in causes],
        "risks": [f.as_dict() | {"check": by[id(f)]} for f in risks],
        "settings": dataclasses.asdict(ev.settings), "per_fold": per_fold(ev, checks),
        "checks": {c.name: c.jsonable(ev.measured[c.name]) for c in checks},
    }
    rundir.write_json(out / "diagnosis.json", jsonable(summary))
    rundir.write_text(out / "report.md", markdown(ev, checks, causes, risks, title))
    return out / "report.md"


def write_figures(ev: Evidence, checks, out: Path, tensorboard: bool = True) -> None:
    """Every check's figures as PNG files in ``out`` and, with ``tensorboard``, into ``out/tensorboard``."""
    writer = SummaryWriter(str(out / "tensorboard")) if tensorboard else None
    for check in checks:
        for name, fig in check.figures(ev.measured[check.name], ev).items():
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            if writer is not None:  # the PNG as drawn: add_figure would draw the figure a second time
                writer.add_image(f"diagnosis/{name.removesuffix('.png')}", plt.imread(out / name), dataformats="HWC")
    if writer is not None:
        writer.close()


def per_fold(ev: Evidence, checks) -> list[dict]:
    """UA, WA and ECE of every fold, then each check's columns (``Check.fold_columns``)."""
    rows = []
    for f in ev.folds:
        preds = f.probs.argmax(1)
        row = {"fold": f.fold, "n": len(f.labels), "speakers": sorted(set(f.speakers)), "ua": S.ua(f.labels, preds, ev.C),
               "wa": float((f.labels == preds).mean()), "ece": S.calibration(f.probs, f.labels)["ece"]}
        rows.append(row | {k: v for check in checks for k, (_, v) in check.fold_columns(f, ev).items()})
    return rows


def jsonable(x):
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def _line(k: int, f: Finding, causes: list[Finding]) -> str:
    sure = f" (90 % interval {f.interval[0]:+.3f} to {f.interval[1]:+.3f}; {f.sure})" if f.interval else ""
    why = [c.id for c in causes if explains(c, f)]
    after = f" Here it follows from {' and '.join(c.replace('_', ' ') for c in why)}, listed above." if why else ""
    return (f"{k}. **{f.cause}** (UA at stake {f.score:.3f}{sure}): {f.evidence}.{after} "
            f"*Try:* {f.try_text() or 'see below'}.")


def markdown(ev: Evidence, checks, causes: list[Finding], risks: list[Finding], title: str) -> str:
    L = [f"# Diagnosis: {title}", ""]
    L += [f"Test utterances: {ev.n} ({len(ev.folds)} fold{'s' if len(ev.folds) > 1 else ''}, pooled). "
          f"**UA {ev.ua:.3f}**, WA {ev.wa:.3f}, macro-F1 {ev.macro_f1:.3f}; chance UA {1 / ev.C:.3f}.", ""]
    L += ["## Likely causes, ranked", ""]
    if causes:
        L += [_line(k, f, causes) for k, f in enumerate(causes, 1)]
    else:
        L.append(f"No cause costs {REPORT_ABOVE} UA or more on this test set: the errors are spread evenly. "
                 "More data or a stronger model is the lever.")
    if risks:
        L += ["", "Risks (they cost no UA on this test set, but matter for deployment or for reading the outputs):", ""]
        L += [f"- **{f.cause}**: {f.evidence}. *Try:* {f.try_text() or '-'}." for f in risks]
    L += ["", "How to read this:",
          "- **UA at stake**: the UA (0-1) a cause costs on this test set, measured from the run's own evidence "
          "(the rare classes' recall shortfall, what a probe gains without the suspect labels, the gap to clean "
          "held-out speakers, what a reference feature set or more data adds, ...). Causes overlap, so the numbers do "
          "not add up. The interval is a 90 % bootstrap interval over test utterances: **weak** when it reaches zero. "
          "Causes whose interval stays above zero come first, then those without an interval (sure by their size "
          "only), then the weak ones; a consequence (overfitting of too little data, say) goes after its cause "
          f"when that cause costs at least {100 * EXPLAINS:.0f} % of what the consequence does, or whatever it costs "
          "when the consequence was measured through it (features compared on test audio that differs from "
          "training); never above a cause that outranks it on its own.",
          f"- Causes under {REPORT_ABOVE} UA are not listed; each section below says what it measured.",
          "- *Try:* overrides for `python train.py` (the run's own overrides plus these), most promising first.",
          "- **UA**: mean recall over the classes present in the test labels (chance = 1 / classes); **WA**: accuracy.",
          "- **fitting gap**: UA on the training speakers minus UA on the test speakers, both with the tested "
          "weights in eval mode.",
          "- **ECE**: expected calibration error, the mean gap between confidence and accuracy over 10 bins.",
          "- Epochs are counted from 1.", ""]
    for check in checks:
        L += check.section(ev.measured[check.name], ev)
    rows = per_fold(ev, checks)
    if len(rows) > 1:
        columns = {k: head for check in checks for k, (head, _) in check.fold_columns(ev.folds[0], ev).items()}
        L += ["## Per fold", "", "| fold | speakers | n | UA | WA | ECE | " + " | ".join(columns.values()) + " |",
              "|---" * (6 + len(columns)) + "|"]
        L += [f"| {r['fold']} | {', '.join(r['speakers'])} | {r['n']} | {r['ua']:.3f} | {r['wa']:.3f} | {r['ece']:.3f} | "
              + " | ".join(_f(r[k]) for k in columns) + " |" for r in rows]
        L += [""]
    return "\n".join(L)


def _f(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
