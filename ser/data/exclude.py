"""``fold.exclude``: utterances left out of training and validation (never test), e.g. the suspect labels
``ser.diagnose`` lists. The file is a CSV with a ``path`` column (``suspect_labels.csv``: only its rows
with ``flagged`` true) or plain text, one path per line."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def read_exclude(file: str | Path) -> list[str]:
    """The paths ``file`` names (its flagged rows where it has a ``flagged`` column)."""
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"fold.exclude={file}: no such file (a CSV with a path column, e.g. "
                                "<run>/diagnosis/suspect_labels.csv, or one path per line)")
    text = file.read_text()
    first = text.splitlines()[0] if text.strip() else ""
    if "," in first and "path" in [c.strip() for c in first.split(",")]:
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "flagged" in rows[0]:
            rows = [r for r in rows if str(r["flagged"]).strip().lower() in ("true", "1", "yes")]
        return [r["path"].strip() for r in rows if r["path"].strip()]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def excluded_indices(file: str | Path, paths: list[str]) -> set[int]:
    """Indices into ``paths`` (the corpus's utterances) that ``file`` names. Names that match no utterance
    are reported; a list that matches none at all is an error (another corpus, or a moved root)."""
    named = read_exclude(file)
    index = {_key(p): i for i, p in enumerate(paths)}
    found = {index[_key(p)] for p in named if _key(p) in index}
    missing = [p for p in named if _key(p) not in index]
    if named and not found:
        raise ValueError(f"fold.exclude={file}: none of its {len(named)} paths is an utterance of this corpus "
                         f"(e.g. {named[0]}); was it written for another corpus or data.root?")
    if missing:
        log.warning("fold.exclude=%s: %d of its %d paths are not in this corpus, e.g. %s", file, len(missing),
                    len(named), missing[:3])
    return found


def _key(path: str) -> str:
    return str(Path(path).expanduser().resolve())
