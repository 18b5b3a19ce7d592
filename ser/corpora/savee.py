"""SAVEE: flat ``DC_a01.wav`` or original ``AudioData/DC/a01.wav``; speakers DC, JE, JK, KL (male)."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

EMOTIONS = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"}
SPEAKERS = ("DC", "JE", "JK", "KL")
FLAT = re.compile(r"^([A-Za-z]{2})_([a-z]{1,2})(\d\d)$")
NESTED = re.compile(r"^([a-z]{1,2})(\d\d)$")


class SAVEE(Corpus):
    name = "savee"

    def parse(self, path: Path) -> Utterance:
        if m := FLAT.match(path.stem):
            speaker, code, number = m.groups()
        elif m := NESTED.match(path.stem):
            (code, number), speaker = m.groups(), path.parent.name
        else:
            raise BadFile(path, "name does not follow SAVEE's DC_a01 (flat) or DC/a01 (original) pattern")
        speaker = speaker.upper()
        if speaker not in SPEAKERS:
            raise BadFile(path, f"unknown SAVEE speaker {speaker!r}; expected one of {list(SPEAKERS)}")
        if code not in EMOTIONS:
            raise BadFile(path, f"unknown SAVEE emotion code {code!r}; expected one of {sorted(EMOTIONS)}")
        return Utterance(str(path), EMOTIONS[code], speaker, {"number": number, "gender": "m"})
