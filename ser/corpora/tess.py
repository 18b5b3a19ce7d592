"""TESS: ``OAF_back_angry.wav`` = speaker (OAF older, YAF younger), word, emotion.

Only two speakers: a speaker-independent split trains on one and tests on the other."""

from __future__ import annotations

import logging
from pathlib import Path

from ser.corpora.base import BadFile, Corpus
from ser.corpora.utterance import Utterance

EMOTIONS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "neutral": "neutral",
    "ps": "surprise", "pleasant_surprise": "surprise", "pleasant_surprised": "surprise", "sad": "sadness",
}  # fmt: skip
SPEAKERS = {"OAF": 64, "YAF": 26}
log = logging.getLogger(__name__)


class TESS(Corpus):
    name = "tess"

    def parse(self, path: Path) -> Utterance:
        parts = path.stem.split("_")
        if len(parts) < 3:
            raise BadFile(path, "name does not follow TESS's pattern like OAF_back_angry (speaker_word_emotion)")
        speaker, word, emotion = parts[0].upper(), parts[1].lower(), "_".join(parts[2:]).lower()
        folder = path.parent.name.split("_")[0].upper()
        if speaker not in SPEAKERS and folder in SPEAKERS:
            # a known slip of the published corpus: OAF_neutral/OA_bite_neutral.wav; the folder says who it is
            log.info("tess: %s names speaker %r; taking %s from its folder %s", path, parts[0], folder, path.parent.name)
            speaker = folder
        if speaker not in SPEAKERS:
            raise BadFile(path, f"unknown TESS speaker {parts[0]!r}; expected OAF or YAF")
        if emotion not in EMOTIONS:
            raise BadFile(path, f"unknown TESS emotion {emotion!r}; expected one of {sorted(EMOTIONS)}")
        return Utterance(str(path), EMOTIONS[emotion], speaker, {"word": word, "gender": "f", "age": SPEAKERS[speaker]})
