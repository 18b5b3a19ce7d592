"""Faults injected on purpose (``inject.*``), so that a diagnosis can be checked against a known cause
and a model stress-tested ("what if deployment audio is telephone-band at 10 dB?").

Each fault changes only the side it names, when the data module chooses a fold (``use_fold``):

- ``label_noise``: that share of the corpus's labels is replaced, in one seeded draw, by
  ``label_noise_kind``: ``uniform`` (any other class) or ``confusable`` (a class raters confuse it
  with, ``CONFUSABLE``). A fold's training and validation sets see the replaced labels; its test set
  keeps the true ones. The changed utterances of each fold are listed.
- ``test_snr_db`` with ``test_noise`` (``white``, ``pink``, ``babble``): noise added to the test audio
  only; babble is a mix of the fold's *training* utterances, never of test speakers.
- ``test_channel``: the test audio through a channel: ``telephone`` (300-3400 Hz band), ``lowpass4k``
  (a 4 kHz low-pass), ``quiet`` (20 dB quieter and quantised to 8 bits).
- ``train_share``: that share of every class's training utterances is kept (too little data).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ser.acoustics import NOISES, TELEPHONE, band_pass, draw_talkers, full_scale, gain, mix_at_snr, noise, quantise
from ser.data.store import materialize

log = logging.getLogger(__name__)

CHANNELS = {"telephone": TELEPHONE, "lowpass4k": (None, 4000.0), "quiet": None}
QUIET_DB, QUIET_BITS = -20.0, 8

# Which classes listeners mistake for which (same arousal, or same valence at a neighbouring arousal),
# the confusions reported for acted corpora (Banse & Scherer 1996; EmoDB's and IEMOCAP's rater
# agreement tables). A confusable flip draws among the neighbours the corpus has.
CONFUSABLE = {
    "anger": ("happiness", "disgust", "fear"),
    "happiness": ("anger", "surprise", "neutral"),
    "fear": ("sadness", "anger", "surprise"),
    "sadness": ("neutral", "boredom", "fear"),
    "disgust": ("anger", "boredom", "sadness"),
    "boredom": ("neutral", "sadness"),
    "neutral": ("boredom", "calm", "sadness"),
    "calm": ("neutral", "boredom"),
    "surprise": ("happiness", "fear"),
}


@dataclass(frozen=True)
class Injection:
    """The ``inject`` config. Everything off by default.

    Args:
        label_noise: share of the labels replaced (0 to 1); training and validation see them, test never.
        label_noise_kind: ``uniform`` or ``confusable``.
        test_snr_db: noise added to the test audio at this SNR (dB, over the whole utterance); null: none.
        test_noise: ``white``, ``pink`` or ``babble`` (training utterances of the fold, mixed).
        test_channel: ``telephone``, ``lowpass4k``, ``quiet``; null: none.
        train_share: share of every class's training utterances kept (0 to 1).
        seed: every draw follows from it and the fold's name.
    """

    label_noise: float = 0.0
    label_noise_kind: str = "uniform"
    test_snr_db: float | None = None
    test_noise: str = "white"
    test_channel: str | None = None
    train_share: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not 0.0 <= float(self.label_noise) < 1.0:
            raise ValueError(f"inject.label_noise={self.label_noise}: a share in [0, 1)")
        if self.label_noise_kind not in ("uniform", "confusable"):
            raise ValueError(f"inject.label_noise_kind={self.label_noise_kind}: choose uniform or confusable")
        if self.test_noise not in NOISES:
            raise ValueError(f"inject.test_noise={self.test_noise}: choose from {', '.join(NOISES)}")
        if self.test_channel is not None and self.test_channel not in CHANNELS:
            raise ValueError(f"inject.test_channel={self.test_channel}: choose from {', '.join(CHANNELS)} (or null)")
        if not 0.0 < float(self.train_share) <= 1.0:
            raise ValueError(f"inject.train_share={self.train_share}: a share in (0, 1]")

    @property
    def changes_test_audio(self) -> bool:
        return self.test_snr_db is not None or self.test_channel is not None

    @property
    def active(self) -> bool:
        return self.label_noise > 0 or self.changes_test_audio or self.train_share < 1.0

    def describe(self) -> str:
        """What is injected, in words, for the log (empty when nothing is)."""
        parts = []
        if self.label_noise > 0:
            share = f"{100 * self.label_noise:.0f} %"
            parts.append(f"{share} of training and validation labels replaced ({self.label_noise_kind})")
        if self.test_snr_db is not None:
            parts.append(f"{self.test_noise} noise at {self.test_snr_db:g} dB SNR on the test audio")
        if self.test_channel is not None:
            parts.append(f"the test audio through a {self.test_channel} channel")
        if self.train_share < 1.0:
            parts.append(f"{100 * self.train_share:.0f} % of every class's training utterances kept")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)


def fold_rng(seed: int, fold_name: str, stream: int) -> np.random.Generator:
    """A generator per (seed, fold, kind of draw): the same fold gets the same faults in any run."""
    return np.random.default_rng([int(seed), zlib.crc32(fold_name.encode()), stream])


def replace_labels(labels: list[str], indices: list[int], class_names: list[str], share: float, kind: str,
                   rng: np.random.Generator) -> dict[int, str]:
    """Index -> new label for ``round(share * len(indices))`` of ``indices``, each to another class.

    ``uniform``: any other class of ``class_names``; ``confusable``: one of the label's ``CONFUSABLE``
    neighbours that ``class_names`` holds (any other class when it holds none).
    """
    chosen = rng.permutation(np.asarray(indices, dtype=int))[: int(round(share * len(indices)))]
    out = {}
    for i in sorted(chosen.tolist()):
        others = [c for c in class_names if c != labels[i]]
        if kind == "confusable":
            near = [c for c in CONFUSABLE.get(labels[i], ()) if c in class_names]
            others = near or others
        out[i] = others[int(rng.integers(len(others)))]
    return out


def degrade(wave: torch.Tensor, inj: Injection, sample_rate: int, rng: np.random.Generator,
            babble_from: list = ()) -> torch.Tensor:
    """A test wave (T,) through the injected channel, then with the injected noise (babble: talkers drawn from
    ``babble_from``, tensors or stored handles): what a deployment microphone would deliver. Returns float32 (T,)."""
    x = wave.double().numpy()
    if inj.test_channel in ("telephone", "lowpass4k"):
        low, high = CHANNELS[inj.test_channel]
        x = band_pass(x, low, high, sample_rate)
    if inj.test_snr_db is not None:
        talkers = ()
        if inj.test_noise == "babble":
            talkers = [materialize(babble_from[int(k)]) for k in draw_talkers(rng, len(babble_from))]
        x = mix_at_snr(x, noise(inj.test_noise, len(x), rng, talkers), inj.test_snr_db)
    if inj.test_channel == "quiet":
        x = quantise(gain(x, QUIET_DB), QUIET_BITS)
    return torch.from_numpy(full_scale(x))
