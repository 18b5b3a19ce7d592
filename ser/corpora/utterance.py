"""The one record every corpus adapter produces."""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Utterance:
    """One labelled recording.

    Args:
        path: audio file on disk.
        label: canonical emotion name (see ``ser.corpora.labels``).
        speaker: speaker id, unique within the corpus.
        extras: corpus metadata kept for analysis (gender, sentence, intensity, ...).
        source: for audio that is not a file of its own (a Hugging Face dataset's row): a callable returning
            what soundfile reads (a file object or a path), called when the audio is decoded; ``path`` then
            names the row in messages. Its ``key`` attribute, if any, changes with the content (the cache key).
    """

    path: str
    label: str
    speaker: str
    extras: dict = field(default_factory=dict)
    source: Callable | None = field(default=None, repr=False, compare=False)
