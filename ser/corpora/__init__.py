"""Corpus adapters: each turns a folder into a list of ``Utterance`` records."""

from ser.corpora.utterance import Utterance

__all__ = ["Utterance"]
