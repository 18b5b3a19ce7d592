"""Feature normalisation, a module of its own: statistics are handed to it, never pulled by it.

``FeatureNorm`` standardises (B, F, T') features per row. Its statistics are buffers, so
checkpoints and exports carry them; they are estimated outside the model from ``ser.nn.Moments``
accumulated over the training split (``ser.callbacks.FitFeatureNorm`` does it before training).
"""

from __future__ import annotations

import torch
from torch import nn

from ser.nn import Moments, length_mask, masked_mean_std

MODES = ("global", "speaker", "corpus", "utterance", "none")
# The batch key that picks a clip's row of the group table, per mode with one.
GROUP_KEYS = {"speaker": "speakers", "corpus": "corpora"}


class FeatureNorm(nn.Module):
    """(B, F, T') features, frame lengths (B,) -> standardised features, padding 0.

    Args:
        mode: ``global`` (mean 0, std 1 per row over the training split, from ``fit``), ``utterance``
            (per row over each utterance's own frames: removes channel offsets, but also level and
            spectral tilt, which carry emotion), ``speaker`` (per row over all of each speaker's audio,
            from ``fit_speakers``; removes speaker identity but keeps each utterance's level against the
            speaker's own. **Transductive** when the test speakers' unlabelled audio is used, which is how
            training fits it: report such results separately. Clips of unknown speakers fall back to the
            global statistics), ``corpus`` (the same per corpus of ``data=multi``, each from all of that
            corpus's audio in the fold: for a test corpus that is its unlabelled audio, so this is
            **transductive** too and reported separately from training-corpus statistics, which
            ``global`` gives) or ``none``.
        num_features: F.
    """

    def __init__(self, mode: str = "global", num_features: int = 1):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"features.normalize: {mode!r} is not one of {MODES}")
        self.mode = mode
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("fitted", torch.tensor(False))
        # normalize=speaker|corpus: one row per speaker (corpus) index of the data module, known only after
        # fitting. The buffers keep their first name so that older checkpoints load.
        self.register_buffer("speaker_mean", torch.zeros(0, num_features))
        self.register_buffer("speaker_std", torch.ones(0, num_features))

    @property
    def needs_fit(self) -> bool:
        return self.mode in ("global", "speaker", "corpus") and not bool(self.fitted)

    @property
    def group_key(self) -> str | None:
        """The batch key holding each clip's group (``speakers`` or ``corpora``); None without groups."""
        return GROUP_KEYS.get(self.mode)

    @property
    def needs_speakers(self) -> bool:
        """Group statistics (per speaker or per corpus) still to fit."""
        return self.group_key is not None and not len(self.speaker_mean)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Take the checkpoint's speaker-table size (an empty table in checkpoints from before normalize=speaker).
        for name in ("speaker_mean", "speaker_std"):
            key = prefix + name
            if key not in state_dict and prefix + "mean" in state_dict:
                state_dict[key] = torch.zeros(0, len(self.mean))
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def fit(self, moments: Moments) -> None:
        """Global statistics from the training split's ``Moments`` (one group)."""
        if not moments.count.sum():
            raise ValueError(f"features.normalize={self.mode}: no training frames to estimate statistics from")
        mean, std = moments.mean_std()
        self.mean.copy_(mean[0])
        self.std.copy_(std[0])
        self.fitted.fill_(True)

    def fit_speakers(self, moments: Moments) -> None:
        """Per-group statistics (one group per speaker or corpus index); groups without frames keep the global ones."""
        mean, std = moments.mean_std()
        seen = moments.count > 0
        self.speaker_mean = torch.where(seen, mean, self.mean)
        self.speaker_std = torch.where(seen, std, self.std)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor, speakers: torch.Tensor | None = None) -> torch.Tensor:
        """feats (B, F, T'), frames (B,), ``speakers`` (B,) indexes the group table, speakers or corpora by
        ``group_key`` (-1 or None: global)."""
        mask = length_mask(frames, feats.shape[-1])  # (B, T')
        if self.mode == "none":
            return feats * mask[:, None, :]
        if self.mode == "utterance":
            mean, std = masked_mean_std(feats, mask)
        else:
            if not torch.compiler.is_exporting() and not torch.jit.is_tracing() and not self.fitted:
                raise RuntimeError(f"features.normalize={self.mode}: fit the statistics on training data first "
                                   "(FeatureNorm.fit; ser.train does it before training)")
            mean, std = self.mean[None], self.std[None]  # (1, F), or (B, F) per speaker below
            if self.group_key is not None and speakers is not None and len(self.speaker_mean):
                known = ((speakers >= 0) & (speakers < len(self.speaker_mean)))[:, None]
                row = speakers.clamp(0, len(self.speaker_mean) - 1)
                mean = torch.where(known, self.speaker_mean[row], mean)
                std = torch.where(known, self.speaker_std[row], std)
        return (feats - mean[..., None]) / std[..., None] * mask[:, None, :]
