"""usage: python -m ser.inspect data=<corpus> data.root=<dir> [data.* ...]

A corpus as the adapter sees it, before any training: one JSON object on stdout (utterances,
speakers, label counts, a label x speaker table, durations, sample rates, skipped files with
reasons, identical recordings, float audio beyond full scale) and a readable table on stderr.
Bad files never stop the inspection: they are listed under "skipped". The options are training's
(conf/train.yaml), so what inspect shows is what train.py will read.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import soundfile as sf
from omegaconf import OmegaConf, open_dict

from ser.cli import check_early, run_command

PROG = "python -m ser.inspect"
if __name__ == "__main__":  # --help and a mistaken option are answered before torch loads (seconds)
    check_early(PROG, __doc__, "train", sys.argv[1:], lambda cfg: OmegaConf.masked_copy(cfg, ["data"]), ["data"])

from ser.build import build_corpus  # noqa: E402
from ser.corpora.multi import corpus_of  # noqa: E402
from ser.data.decoded import DecodedCorpus  # noqa: E402


def inspect_corpus(corpus: DecodedCorpus) -> dict:
    """Summarise a loaded corpus (after ``corpus.load()``); with several corpora (``data=multi``), also each
    corpus on its own under ``corpora``."""
    summary = _summary(corpus, list(range(len(corpus))))
    if len(corpus.corpus_names) > 1:
        summary["corpus"] = corpus.label
        summary["corpora"] = {}
        for name in corpus.corpus_names:
            part = _summary(corpus, [i for i, u in enumerate(corpus.utterances) if corpus_of(u) == name])
            part["root"] = str(corpus.adapter.parts[name].root)
            part["skipped"] = [s for s in corpus.skipped if s.get("corpus") == name]
            summary["corpora"][name] = part | {"corpus": name}
    return summary


def _summary(corpus: DecodedCorpus, index: list[int]) -> dict:
    utts = [corpus.utterances[i] for i in index]
    durations = [corpus.duration(i) for i in index]
    labels = Counter(u.label for u in utts)
    speakers = sorted({u.speaker for u in utts})
    table = {label: {s: 0 for s in speakers} for label in corpus.class_names}
    for u in utts:
        table[u.label][u.speaker] += 1
    rates = Counter()
    for u in utts:
        try:
            rates[str(sf.info(u.path).samplerate)] += 1
        except (sf.LibsndfileError, RuntimeError):
            rates["unknown"] += 1
    genders = Counter(str(u.extras.get("gender", "")) for u in utts)
    return {
        "corpus": corpus.adapter.name,
        "root": str(corpus.adapter.root),
        "utterances": len(utts),
        "speakers": len(speakers),
        "speaker_ids": speakers,
        "labels": {label: labels[label] for label in corpus.class_names},
        "label_by_speaker": table,
        "genders": dict(genders) if any(genders) else {},
        "duration_s": {
            "total": round(sum(durations), 2),
            "min": round(min(durations), 3) if durations else 0.0,
            "mean": round(sum(durations) / len(durations), 3) if durations else 0.0,
            "max": round(max(durations), 3) if durations else 0.0,
        },
        "sample_rates": dict(sorted(rates.items())),
        "skipped": corpus.skipped,
        "out_of_range": [u.path for u in utts if u.path in set(corpus.out_of_range)],
        "duplicates": [g for g in corpus.duplicates if set(g) & {u.path for u in utts}],
    }


def render(summary: dict) -> str:
    """A human-readable label x speaker table."""
    speakers = summary["speaker_ids"]
    width = max([len(s) for s in speakers] + [3])
    head = f"{'label':<12}" + "".join(f"{s:>{width + 1}}" for s in speakers) + f"{'total':>7}"
    rows = [head, "-" * len(head)]
    for label, counts in summary["label_by_speaker"].items():
        cells = "".join(f"{counts[s]:>{width + 1}}" for s in speakers)
        rows.append(f"{label:<12}{cells}{summary['labels'][label]:>7}")
    return "\n".join(rows + footer(summary))


def footer(summary: dict) -> list[str]:
    """The totals line, then every skipped file, out-of-range file and duplicate group."""
    d = summary["duration_s"]
    rows = [
        f"{summary['utterances']} utterances, {summary['speakers']} speakers, {d['total'] / 60:.1f} min "
        f"(min {d['min']} s, mean {d['mean']} s, max {d['max']} s), sample rates {summary['sample_rates']}, "
        f"{len(summary['skipped'])} skipped, {len(summary['out_of_range'])} beyond full scale, "
        f"{len(summary['duplicates'])} duplicate groups"
    ]
    rows += [f"  skipped {s['path']}: {s['reason']}" for s in summary["skipped"]]
    rows += [f"  beyond full scale (kept as it is): {p}" for p in summary["out_of_range"]]
    rows += ["  identical audio: " + " = ".join(g) for g in summary["duplicates"]]
    return rows


def render_by_corpus(summary: dict) -> str:
    """data=multi: a label x corpus table of the whole set, then the totals line."""
    corpora = summary["corpora"]
    width = max([len(n) for n in corpora] + [5])
    head = f"{'label':<12}" + "".join(f"{n:>{width + 1}}" for n in corpora) + f"{'total':>7}"
    rows = [f"== all corpora ({summary['corpus']})", head, "-" * len(head)]
    for label, total in summary["labels"].items():
        rows.append(f"{label:<12}" + "".join(f"{part['labels'].get(label, 0):>{width + 1}}" for part in corpora.values())
                    + f"{total:>7}")
    rows.append(f"{'speakers':<12}" + "".join(f"{part['speakers']:>{width + 1}}" for part in corpora.values())
                + f"{summary['speakers']:>7}")
    return "\n".join(rows + footer(summary))


def main(argv: list[str] | None = None) -> dict | int:
    """The summary (a dict) when called from Python; from the shell, exit status 2 on a user error."""
    return run_command(PROG, __doc__, "train", inspect_command, argv, groups=["data"],
                       help_cfg=lambda cfg: OmegaConf.masked_copy(cfg, ["data"]))


def inspect_command(cfg) -> dict:
    with open_dict(cfg):
        cfg.data.on_bad_file = "skip"  # list every bad file instead of stopping at the first
    corpus = build_corpus(cfg)
    corpus.prepare()
    corpus.load()
    summary = inspect_corpus(corpus)
    for name, part in summary.get("corpora", {}).items():
        print(f"== {name} ({part['root']})\n{render(part)}\n", file=sys.stderr)
    print(render_by_corpus(summary) if "corpora" in summary else render(summary), file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    result = main()
    sys.exit(result if isinstance(result, int) else 0)
