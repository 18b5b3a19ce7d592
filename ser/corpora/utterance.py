"""The one record every corpus adapter produces."""

from dataclasses import dataclass, field


@dataclass
class Utterance:
    """One labelled recording.

    Args:
        path: audio file on disk.
        label: canonical emotion name (see ``ser.corpora.labels``).
        speaker: speaker id, unique within the corpus.
        extras: corpus metadata kept for analysis (gender, sentence, intensity, ...).
    """

    path: str
    label: str
    speaker: str
    extras: dict = field(default_factory=dict)
