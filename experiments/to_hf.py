"""Save any corpus ser reads as a local Hugging Face dataset (``save_to_disk``), e.g. to check ``data=hf`` against
the corpus's own adapter:

    python experiments/to_hf.py data=emodb data.root=../shared/data/emodb out=.cache/hf/emodb
    python train.py experiment=pretrained data=hf data.root=.cache/hf/emodb split=loso
    python train.py experiment=pretrained data=emodb data.root=../shared/data/emodb split=loso   # the same UA

Each row holds the file's bytes as they are on disk (``audio``: bytes and name, undecoded), its canonical
``label`` (a ClassLabel), its ``speaker`` and the adapter's metadata columns, in the adapter's order.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> Path:
    import datasets
    from hydra.utils import instantiate

    from ser.cli import compose_config
    from ser.corpora.labels import ordered

    argv = list(sys.argv[1:] if argv is None else argv)
    out = next((a.split("=", 1)[1] for a in argv if a.startswith("out=")), None)
    if not out:
        raise SystemExit("usage: python experiments/to_hf.py data=<corpus> data.root=<dir> out=<folder>")
    cfg = compose_config("train", [a for a in argv if not a.startswith("out=")])
    corpus = instantiate(cfg.data.corpus)(root=cfg.data.root)
    utterances, problems = corpus.scan()
    if problems:
        print(f"{len(problems)} files the adapter could not use are left out: {problems[:3]}")
    names = ordered(u.label for u in utterances)
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=names), "speaker": datasets.Value("string")})
    data = {"audio": [{"bytes": Path(u.path).read_bytes(), "path": Path(u.path).name} for u in utterances],
            "label": [names.index(u.label) for u in utterances], "speaker": [u.speaker for u in utterances]}
    ds = datasets.Dataset.from_dict(data, features=features).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": ds}).save_to_disk(out)
    print(f"{len(ds)} rows, classes {names}, {len(set(data['speaker']))} speakers -> {out}")
    return Path(out)


if __name__ == "__main__":
    main()
