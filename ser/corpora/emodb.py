"""Berlin EmoDB: ``03a01Fa.wav`` = speaker 03, text a01, emotion F, version a."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
# From the corpus documentation: speaker -> (gender, age).
SPEAKERS = {
    "03": ("m", 31), "08": ("f", 34), "09": ("f", 21), "10": ("m", 32), "11": ("m", 26),
    "12": ("m", 30), "13": ("f", 32), "14": ("f", 35), "15": ("m", 25), "16": ("f", 31),
}  # fmt: skip
NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


class EmoDB(Corpus):
    name = "emodb"

    def parse(self, path: Path) -> Utterance:
        m = NAME.match(path.stem)
        if not m:
            raise BadFile(path, "name does not follow EmoDB's pattern like 03a01Fa (speaker, text, emotion, version)")
        speaker, text, code, version = m.groups()
        if code not in EMOTIONS:
            raise BadFile(path, f"unknown EmoDB emotion code {code!r}; expected one of {sorted(EMOTIONS)}")
        gender, age = SPEAKERS.get(speaker, ("", 0))
        extras = {"text": text, "version": version, "gender": gender, "age": age}
        return Utterance(str(path), EMOTIONS[code], speaker, extras)
