"""What every corpus adapter shares: recursive discovery of audio files and bad-file reporting."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)

# What soundfile (libsndfile) decodes; the container itself is read from the content.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3")


class BadFile(Exception):
    """A file in the corpus folder that cannot be used, with the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class Corpus:
    """Base adapter. Subclasses set ``name`` and implement ``parse``.

    Args:
        root: the corpus folder (``data.root``); files are found recursively, hidden files and
            folders are ignored, and partial copies are fine.
    """

    name = "corpus"
    extensions = AUDIO_EXTENSIONS

    def __init__(self, root: str):
        self.root = Path(str(root)).expanduser()

    def files(self) -> list[Path]:
        if not self.root.exists():
            raise FileNotFoundError(
                f"data.root={self.root} does not exist; point data.root at your copy of {self.name} "
                "(layouts in README.md, 'Real corpora')"
            )
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(self.extensions)]
        return sorted(found)

    def parse(self, path: Path) -> Utterance | None:
        """One file -> an Utterance; None for a file this configuration leaves out on purpose
        (e.g. RAVDESS song when speech is selected); raise ``BadFile`` for a file that should
        be in the corpus but cannot be labelled."""
        raise NotImplementedError

    def scan(self) -> tuple[list[Utterance], list[dict]]:
        """-> (utterances, problems); each problem is ``{"path", "reason"}``."""
        utterances, problems, left_out = [], [], 0
        for path in self.files():
            try:
                utt = self.parse(path)
            except BadFile as err:
                problems.append({"path": err.path, "reason": err.reason})
                continue
            if utt is None:
                left_out += 1
            else:
                utterances.append(utt)
        if left_out:
            log.info("%s: %d files left out by the adapter's options", self.name, left_out)
        if not utterances and not problems:
            kinds = ", ".join(self.extensions)
            raise FileNotFoundError(f"data.root={self.root}: no {self.name} audio files found ({kinds})")
        return utterances, problems
