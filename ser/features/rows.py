"""Extra feature rows stacked under the spectrogram's: deltas, prosody and spectral descriptors.

Each returns (B, k, T') rows on the device of its input, with frame ``i`` centred on sample
``i * hop``, exactly like the log-mel frames they stack with.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn


class Deltas(nn.Module):
    """Temporal slopes of the rows: (B, F, T') and a (B, 1, T') padding mask -> ``order`` x (B, F, T').

    Padding is zeroed before each delta, so the frames near a clip's end match the clip alone.
    """

    def __init__(self, order: int = 1):
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"features.deltas must be 0, 1 or 2, got {order}")
        self.order = order

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        rows = [feats]
        for _ in range(self.order):
            rows.append(AF.compute_deltas(rows[-1], mode="constant") * mask)
        return rows[1:]


def frames(waves: torch.Tensor, win: int, hop: int) -> torch.Tensor:
    """(B, T) -> (B, T // hop + 1, win) centred frames, zero-padded at both ends."""
    padded = nn.functional.pad(waves, (win // 2, win // 2))
    return padded.unfold(-1, win, hop)[:, : waves.shape[-1] // hop + 1]


class Prosody(nn.Module):
    """F0 (semitones above 50 Hz, 0 when unvoiced), voicing strength, log energy, zero-crossing rate.

    F0 comes from the normalised autocorrelation of 40 ms frames (an NCCF-style tracker): the
    lag of the highest peak between ``f0_max`` and ``f0_min``; a frame is voiced when that peak
    exceeds ``voicing_threshold``. Rows: ``f0_st, voicing, log_energy, zcr`` (k = 4).
    """

    rows = ("f0_st", "voicing", "log_energy", "zcr")

    def __init__(self, sample_rate: int = 16000, hop_length: int = 160, win_ms: float = 40.0,
                 f0_min: float = 60.0, f0_max: float = 500.0, voicing_threshold: float = 0.45):
        super().__init__()
        self.sample_rate, self.hop = sample_rate, hop_length
        self.win = int(round(win_ms * sample_rate / 1000))
        self.lag_min, self.lag_max = int(sample_rate // f0_max), int(sample_rate // f0_min)
        self.threshold = voicing_threshold
        self.n_fft = 1 << (2 * self.win - 1).bit_length()
        window = torch.hann_window(self.win)
        self.register_buffer("window", window, persistent=False)
        # The window's own autocorrelation, normalised: dividing by it undoes its taper over the lag.
        w_ac = torch.fft.irfft(torch.fft.rfft(window, n=self.n_fft).abs() ** 2, n=self.n_fft)[: self.lag_max + 1]
        self.register_buffer("window_ac", (w_ac / w_ac[0]).clamp_min(1e-3), persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, 4, T // hop + 1)."""
        x = frames(waves.float(), self.win, self.hop)  # (B, T', win)
        x = x - x.mean(-1, keepdim=True)
        spec = torch.fft.rfft(x * self.window, n=self.n_fft)
        ac = torch.fft.irfft(spec.abs() ** 2, n=self.n_fft)[..., : self.lag_max + 1]  # (B, T', lags)
        nccf = ac / ac[..., :1].clamp_min(1e-10) / self.window_ac
        search = nccf[..., self.lag_min - 1 : self.lag_max + 1]
        inner = search[..., 1:-1]
        local_max = (inner >= search[..., :-2]) & (inner >= search[..., 2:])
        best = (inner * local_max).amax(-1, keepdim=True)
        # The shortest lag whose peak is nearly as high as the best: avoids picking sub-harmonics.
        lag = (local_max & (inner >= 0.85 * best)).float().argmax(-1)
        voicing = inner.gather(-1, lag[..., None]).squeeze(-1).clamp(0, 1)
        f0 = self.sample_rate / (lag + self.lag_min).float()
        f0_st = torch.where(voicing > self.threshold, 12 * torch.log2(f0 / 50.0), torch.zeros_like(f0))
        log_energy = torch.log(x.pow(2).mean(-1) + 1e-8)
        zcr = (x[..., 1:].sign() != x[..., :-1].sign()).float().mean(-1)
        return torch.stack([f0_st, voicing, log_energy, zcr], dim=1)


class Spectral(nn.Module):
    """Spectral centroid, bandwidth, 85 % roll-off (all in kHz) and flatness from a power spectrogram.

    (B, n_freq, T') power -> (B, 4, T')."""

    rows = ("centroid", "bandwidth", "rolloff", "flatness")

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, rolloff: float = 0.85):
        super().__init__()
        self.register_buffer("freqs", torch.linspace(0, sample_rate / 2000, n_fft // 2 + 1), persistent=False)
        self.rolloff = rolloff

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        p = power.float() + 1e-10
        total = p.sum(1, keepdim=True)
        f = self.freqs[None, :, None]
        centroid = (p * f).sum(1, keepdim=True) / total
        bandwidth = ((p * (f - centroid) ** 2).sum(1, keepdim=True) / total).sqrt()
        reached = p.cumsum(1) >= self.rolloff * total
        rolloff = self.freqs[reached.float().argmax(1)]  # first bin past the threshold
        flatness = torch.exp(torch.log(p).mean(1)) / p.mean(1)
        return torch.cat([centroid, bandwidth, rolloff[:, None], flatness[:, None]], dim=1)
