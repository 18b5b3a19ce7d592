"""CREMA-D: ``1001_DFA_ANG_XX.wav`` = actor, sentence, emotion, level; demographics from
``VideoDemographics.csv`` when the copy has it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


class CremaD(Corpus):
    name = "crema_d"

    def __init__(self, root: str):
        super().__init__(root)
        self._demographics: dict[str, dict] | None = None

    def demographics(self) -> dict[str, dict]:
        if self._demographics is None:
            self._demographics = {}
            for table in sorted(self.root.rglob("VideoDemographics.csv")):
                with open(table, newline="", encoding="utf-8", errors="replace") as f:
                    for row in csv.DictReader(f):
                        self._demographics[str(row.get("ActorID", "")).strip()] = row
        return self._demographics

    def parse(self, path: Path) -> Utterance:
        m = NAME.match(path.stem)
        if not m:
            raise BadFile(path, "name does not follow CREMA-D's pattern like 1001_DFA_ANG_XX")
        actor, sentence, emotion, level = m.groups()
        if emotion not in EMOTIONS:
            raise BadFile(path, f"unknown CREMA-D emotion code {emotion!r}; expected one of {sorted(EMOTIONS)}")
        row = self.demographics().get(actor, {})
        sex = str(row.get("Sex", "")).strip().lower()
        extras = {
            "sentence": sentence,
            "level": LEVELS.get(level, level),
            "gender": {"male": "m", "female": "f"}.get(sex, ""),
            "age": row.get("Age", ""),
        }
        return Utterance(str(path), EMOTIONS[emotion], actor, extras)
