"""IEMOCAP: wavs under ``Session*/sentences/wav/<dialog>/``; labels from
``Session*/dialog/EmoEvaluation/<dialog>.txt``. Speaker = session + gender of the utterance."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

# The standard four classes merge excitement into happiness.
FOUR = {"ang": "anger", "hap": "happiness", "exc": "happiness", "neu": "neutral", "sad": "sadness"}
ALL = FOUR | {"sur": "surprise", "fea": "fear", "dis": "disgust", "fru": "frustration", "oth": "other"}
LINE = re.compile(r"^\[(\d+\.?\d*) - (\d+\.?\d*)\]\s+(Ses\w+)\s+(\w+)\s+\[")
UTT = re.compile(r"^Ses(\d\d)([FM])_(impro|script)\w*_([FM])\d+\w*$")


class IEMOCAP(Corpus):
    """Args:
    root: the folder holding Session1..Session5.
    classes: ``four`` (anger, happiness = hap + exc, neutral, sadness; others left out) or ``all``.
    """

    name = "iemocap"

    def __init__(self, root: str, classes: str = "four"):
        super().__init__(root)
        if classes not in ("four", "all"):
            raise ValueError(f"data.corpus.classes must be four or all, got {classes!r}")
        self.codes = FOUR if classes == "four" else ALL
        self._labels: dict[str, str] | None = None

    def labels(self) -> dict[str, str]:
        """Utterance id -> label code, from every EmoEvaluation file in the copy."""
        if self._labels is None:
            self._labels = {}
            for txt in sorted(self.root.rglob("EmoEvaluation/*.txt")):
                for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                    if m := LINE.match(line):
                        self._labels[m.group(3)] = m.group(4)
        return self._labels

    def parse(self, path: Path) -> Utterance | None:
        m = UTT.match(path.stem)
        if not m:
            raise BadFile(path, "name does not follow IEMOCAP's pattern like Ses01F_impro01_F000")
        session, _, kind, gender = m.groups()
        code = self.labels().get(path.stem)
        if code is None:
            raise BadFile(path, "no label for this utterance in any dialog/EmoEvaluation/*.txt")
        if code == "xxx" or code not in ALL:
            return None  # no majority label ("xxx"): left out by the standard protocol
        if code not in self.codes:
            return None
        extras = {"session": int(session), "gender": gender.lower(), "kind": "improvised" if kind == "impro" else "scripted"}
        return Utterance(str(path), self.codes[code], f"Ses{session}{gender}", extras)
