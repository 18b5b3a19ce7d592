"""Log-mel and MFCC frontends, batched on whatever device the module is on.

Windows, filterbanks and the DCT are buffers, so ``.to(device)`` moves them with the model.
STFT frames are centred with zero padding, which makes the features of a clip identical
whether it is computed alone or inside a zero-padded batch: frame ``i`` of a clip of ``n``
samples is valid for ``i < n // hop + 1``.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from ser.models.masking import length_mask, masked_mean_std

NORMALIZATIONS = ("global", "utterance", "none")


class LogMel(nn.Module):
    """Waves (B, T) -> log-mel features (B, n_mels, T') and frame lengths (B,).

    Args:
        sample_rate: input rate (16000).
        n_mels: mel bands (64).
        win_ms: analysis window in ms (25).
        hop_ms: frame shift in ms (10).
        n_fft: FFT size, at least the window (512).
        f_min, f_max: filterbank range in Hz (20, Nyquist).
        normalize: ``global`` (mean 0, std 1 per band over the training split, estimated by
            ``fit_stats`` before training and saved with the model), ``utterance`` (per band over each
            utterance's own frames: removes channel offsets, but also level and spectral tilt, which
            carry emotion) or ``none``.

    >>> feats, lens = LogMel(normalize="utterance")(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> feats.shape, lens.tolist()
    (torch.Size([2, 64, 101]), [101, 51])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_fft: int = 512,
        f_min: float = 20.0,
        f_max: float | None = None,
        normalize: str = "global",
    ):
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"features.normalize: {normalize!r} is not one of {NORMALIZATIONS}")
        self.win_length = int(round(win_ms * sample_rate / 1000))
        self.hop_length = int(round(hop_ms * sample_rate / 1000))
        if n_fft < self.win_length:
            raise ValueError(f"features.n_fft={n_fft} is shorter than the {self.win_length}-sample window")
        self.sample_rate, self.normalize = sample_rate, normalize
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            pad_mode="constant",  # zeros, like batch padding: alone == in a batch
            norm="slaney",
            mel_scale="slaney",
        )
        self._init_stats(n_mels)

    def _init_stats(self, rows: int) -> None:
        self.out_features = rows
        # Global statistics live in buffers, so checkpoints and exports carry them.
        self.register_buffer("mean", torch.zeros(rows))
        self.register_buffer("std", torch.ones(rows))
        self.register_buffer("fitted", torch.tensor(False))

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.hop_length + 1

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, n_mels, T') natural-log mel power."""
        return torch.log(self.mel(waves.float()) + 1e-6)

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        return self.log_mel(waves)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, T), lengths (B,) in samples -> feats (B, F, T'), frame lengths (B,); padding is 0."""
        feats = self.features(waves)  # (B, F, T')
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[-1])
        mask = length_mask(frames, feats.shape[-1])  # (B, T')
        if self.normalize == "utterance":
            mean, std = masked_mean_std(feats, mask)
            feats = (feats - mean[..., None]) / std[..., None]
        elif self.normalize == "global":
            if not self.fitted:
                raise RuntimeError("features.normalize=global: call fit_stats(loader) on training data first")
            feats = (feats - self.mean[:, None]) / self.std[:, None]
        return feats * mask[:, None, :], frames

    @torch.no_grad()
    def fit_stats(self, batches) -> None:
        """Per-band mean and std over every valid frame of ``batches`` (dicts with waves, lengths)."""
        total = total_sq = count = 0.0
        for batch in batches:
            lengths = batch["lengths"].to(self.mean.device)
            feats = self.features(batch["waves"].to(self.mean.device)).double()
            mask = length_mask(self.frame_lengths(lengths).clamp(max=feats.shape[-1]), feats.shape[-1])[:, None, :]
            total = total + (feats * mask).sum((0, 2))
            total_sq = total_sq + (feats**2 * mask).sum((0, 2))
            count += float(mask.sum())
        if not count:
            raise ValueError("features.normalize=global: no training frames to estimate statistics from")
        mean = total / count
        self.mean.copy_(mean)
        self.std.copy_((total_sq / count - mean**2).clamp_min(1e-8).sqrt())
        self.fitted.fill_(True)


class MFCC(LogMel):
    """Waves (B, T) -> MFCCs (B, n_mfcc, T'): an orthonormal DCT-II of the log-mel bands.

    Args:
        n_mfcc: coefficients kept (40).
        n_mels: mel bands under the DCT (64).
        Other arguments as ``LogMel``.
    """

    def __init__(self, n_mfcc: int = 40, n_mels: int = 64, **kwargs):
        super().__init__(n_mels=n_mels, **kwargs)
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"features.n_mfcc={n_mfcc} must lie in 1..n_mels={n_mels}")
        self.register_buffer("dct", torchaudio.functional.create_dct(n_mfcc, n_mels, norm="ortho"))  # (n_mels, n_mfcc)
        self._init_stats(n_mfcc)

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bft,fc->bct", self.log_mel(waves), self.dct)  # (B, n_mels, T') -> (B, n_mfcc, T')
