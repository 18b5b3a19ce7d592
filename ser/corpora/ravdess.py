"""RAVDESS: ``03-01-05-01-02-01-12.wav`` = modality, channel, emotion, intensity, statement, repetition, actor."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise",
}  # fmt: skip
CHANNELS = {"01": "speech", "02": "song"}
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


class RAVDESS(Corpus):
    """Args:
    root: the corpus folder.
    channel: ``speech`` (default), ``song`` or ``both``; the other channel is left out.
    """

    name = "ravdess"

    def __init__(self, root: str, channel: str = "speech"):
        super().__init__(root)
        if channel not in ("speech", "song", "both"):
            raise ValueError(f"data.corpus.channel must be speech, song or both, got {channel!r}")
        self.channel = channel

    def parse(self, path: Path) -> Utterance | None:
        m = NAME.match(path.stem)
        if not m:
            raise BadFile(path, "name does not follow RAVDESS's seven two-digit fields like 03-01-05-01-02-01-12")
        modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
        if modality not in ("01", "03"):
            raise BadFile(path, f"modality {modality} is video-only; expected 01 (audio-video) or 03 (audio-only)")
        if channel not in CHANNELS:
            raise BadFile(path, f"unknown vocal channel {channel}; expected 01 (speech) or 02 (song)")
        if emotion not in EMOTIONS:
            raise BadFile(path, f"unknown RAVDESS emotion code {emotion}; expected 01-08")
        if self.channel != "both" and CHANNELS[channel] != self.channel:
            return None
        extras = {
            "gender": "m" if int(actor) % 2 else "f",
            "intensity": "strong" if intensity == "02" else "normal",
            "statement": statement,
            "repetition": repetition,
            "channel": CHANNELS[channel],
        }
        return Utterance(str(path), EMOTIONS[emotion], actor, extras)
