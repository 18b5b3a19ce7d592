"""Any corpus listed in a CSV or JSONL manifest with ``path``, ``label``, ``speaker`` and an
optional ``split`` column (train/val/test, for ``split=predefined``). Relative paths are resolved
against the manifest's folder; every other column is kept as metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.labels import canonical
from ser.corpora.utterance import Utterance

REQUIRED = ("path", "label", "speaker")


class Manifest(Corpus):
    """Args:
    root: the manifest file, or a folder holding ``manifest.csv`` or ``manifest.jsonl``.
    """

    name = "manifest"

    def manifest_file(self) -> Path:
        if self.root.is_file():
            return self.root
        for name in ("manifest.csv", "manifest.jsonl"):
            if (self.root / name).is_file():
                return self.root / name
        raise FileNotFoundError(
            f"data.root={self.root}: no manifest file; give the .csv/.jsonl itself, or a folder holding manifest.csv"
        )

    def rows(self, file: Path) -> list[dict]:
        if file.suffix.lower() in (".jsonl", ".json"):
            lines = file.read_text(encoding="utf-8").splitlines()
            rows = []
            for n, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{file}:{n}: not valid JSON ({err})") from err
            return rows
        with open(file, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))

    def scan(self) -> tuple[list[Utterance], list[dict]]:
        file = self.manifest_file()
        rows = self.rows(file)
        if rows:
            missing = [c for c in REQUIRED if c not in rows[0]]
            if missing:
                raise ValueError(f"{file}: missing column(s) {missing}; a manifest needs {list(REQUIRED)}, split optional")
        utterances, problems = [], []
        for n, row in enumerate(rows, 2 if file.suffix.lower() == ".csv" else 1):
            path = Path(str(row.get("path") or "")).expanduser()
            path = path if path.is_absolute() else file.parent / path
            label, speaker = str(row.get("label") or "").strip(), str(row.get("speaker") or "").strip()
            if not label or not speaker:
                problems.append({"path": str(path), "reason": f"{file.name} line {n}: empty label or speaker"})
                continue
            extras = {k: v for k, v in row.items() if k not in REQUIRED}
            utterances.append(Utterance(str(path), canonical(label), speaker, extras))
        if not utterances and not problems:
            raise ValueError(f"{file}: the manifest lists no files")
        return utterances, problems

    def parse(self, path: Path) -> Utterance:
        raise BadFile(path, "a manifest corpus lists its files; it does not parse names")
