"""Feature normalisation, a module of its own: statistics are handed to it, never pulled by it.

``FeatureNorm`` standardises (B, F, T') features per row. Its statistics are buffers, so
checkpoints and exports carry them; they are estimated outside the model from ``Moments``
accumulated over the training split (``ser.callbacks.FitFeatureNorm`` does it before training).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ser.models.masking import length_mask, masked_mean_std

MODES = ("global", "speaker", "corpus", "utterance", "none")
# The batch key that picks a clip's row of the group table, per mode with one.
GROUP_KEYS = {"speaker": "speakers", "corpus": "corpora"}


class Moments:
    """Running sum, sum of squares and frame count per feature row and group (float64).

    >>> m = Moments(groups=1, rows=2); m.add(torch.ones(1, 2, 5), torch.tensor([3])); m.count.item()
    3.0
    """

    CHUNK = 2**22  # values per slice in ``add`` (32 MB of float64)

    def __init__(self, groups: int, rows: int, device: torch.device | str = "cpu"):
        self.total = torch.zeros(groups, rows, dtype=torch.float64, device=device)
        self.total_sq = torch.zeros_like(self.total)
        self.count = torch.zeros(groups, 1, dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, feats: torch.Tensor, frames: torch.Tensor, group: torch.Tensor | None = None) -> None:
        """Valid frames of feats (B, F, T') with frame lengths (B,); ``group`` (B,) picks the row of each clip.

        Rows go in slices of about ``CHUNK`` values: a batch of an SSL model's 13 x 768 rows is 256 MB in
        float32, and its float64 copies (the value, masked, squared) would be three times that at once."""
        device = self.total.device
        mask = length_mask(frames.to(device).clamp(max=feats.shape[-1]), feats.shape[-1])[:, None, :].double()
        group = torch.zeros(len(feats), dtype=torch.long, device=device) if group is None else group.to(device)
        step = max(1, self.CHUNK // max(1, feats.shape[0] * feats.shape[-1]))
        for start in range(0, feats.shape[1], step):
            x = feats[:, start:start + step].to(self.total) * mask  # padding frames count as nothing
            self.total[:, start:start + step].index_add_(0, group, x.sum(2))
            self.total_sq[:, start:start + step].index_add_(0, group, x.square_().sum(2))
        self.count.index_add_(0, group, mask.sum(2))

    def all_reduce(self) -> Moments:
        """Sum across DDP ranks (each rank saw its share of the batches); a no-op without DDP."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for part in (self.total, self.total_sq, self.count):
                torch.distributed.all_reduce(part)
        return self

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(groups, F) mean and standard deviation (floored at 1e-4), float32."""
        mean = self.total / self.count.clamp_min(1)
        var = (self.total_sq / self.count.clamp_min(1) - mean**2).clamp_min(1e-8)
        return mean.float(), var.sqrt().float()

    @classmethod
    def of(cls, pairs: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]], groups: int, rows: int,
           device: torch.device | str = "cpu") -> Moments:
        """Moments of an iterable of (feats (B, F, T'), frames (B,), group (B,) or None), reduced across ranks."""
        moments = cls(groups, rows, device)
        for feats, frames, group in pairs:
            moments.add(feats, frames, group)
        return moments.all_reduce()


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


class Standardize(nn.Module):
    """(B, D) vectors -> mean 0, std 1 per dimension, with statistics fixed before training.

    What a classical model's ``StandardScaler`` does for utterance functionals, inside a network:
    ``ser.callbacks.FitFeatureNorm`` runs the training split through the model once and hands this
    module the moments of its input. Until then it passes its input through unchanged. Meant for
    inputs that no trainable layer precedes (they must not drift while the model trains).

    Args:
        num_features: D.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, moments: Moments) -> None:
        mean, std = moments.mean_std()
        self.mean.copy_(mean[0])
        self.std.copy_(std[0])
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std  # (B, D); the identity until fitted (mean 0, std 1)
