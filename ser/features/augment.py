"""Training-time augmentation on the model's device, random per example (torch's seeded RNG).

``Augment.waves`` works on waves (B, T) before the frontend: additive noise at an SNR drawn from
a range (white, pink, brown, or babble made of other utterances in the batch), gain, speed
perturbation and pitch shift. ``Augment.features`` works on features (B, F, T'): SpecAugment
frequency and time masks. Each has its own probability; all are off unless configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch
import torchaudio.functional as AF
from torch import nn

from ser.nn import length_mask

COLORS = ("white", "pink", "brown", "babble")


def colored_noise(shape: tuple[int, int], color: str, device) -> torch.Tensor:
    """(B, T) unit-variance noise with a 1/f^0 (white), 1/f (pink) or 1/f^2 (brown) power spectrum."""
    white = torch.randn(shape, device=device)
    if color == "white":
        return white
    spec = torch.fft.rfft(white)
    f = torch.arange(spec.shape[-1], device=device).clamp_min(1).float()
    spec = spec / (f if color == "brown" else f.sqrt())
    noise = torch.fft.irfft(spec, n=shape[-1])
    return noise / noise.std(-1, keepdim=True).clamp_min(1e-8)


def add_noise(waves: torch.Tensor, lengths: torch.Tensor, snr_db: torch.Tensor, color: str) -> torch.Tensor:
    """Add noise to each wave at its own SNR (dB) over its valid samples; padding stays zero."""
    mask = length_mask(lengths, waves.shape[-1]).to(waves.dtype)
    if color == "babble":  # three other utterances of the batch, each at equal level
        noise = sum(torch.roll(waves, k, dims=0) / waves.std(-1, keepdim=True).clamp_min(1e-8) for k in (1, 2, 3))
    else:
        noise = colored_noise(tuple(waves.shape), color, waves.device)
    noise = noise * mask
    count = mask.sum(-1).clamp_min(1)
    p_signal = (waves**2).sum(-1) / count
    p_noise = (noise**2).sum(-1).clamp_min(1e-12) / count
    scale = (p_signal / (p_noise * 10 ** (snr_db / 10))).sqrt()
    return waves + noise * scale[:, None]


class Augment(nn.Module):
    """Args:
    sample_rate: of the waves (16000).
    noise_p: probability of additive noise per example; snr_db: [low, high] range it is drawn from;
        colors: noise kinds drawn from (white, pink, brown, babble).
    gain_p: probability of a gain change; gain_db: drawn from [-gain_db, gain_db].
    speed_p: probability of speed perturbation; speeds: factors drawn from (also shifts pitch).
    pitch_p: probability of a pitch shift; semitones: drawn from [-semitones, semitones] (whole steps).
    freq_masks, freq_width: SpecAugment masks over feature rows (count, max width).
    time_masks, time_width: SpecAugment masks over frames (count, max width); spec_p: probability.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        noise_p: float = 0.0,
        snr_db: Sequence[float] = (5.0, 30.0),
        colors: Sequence[str] = COLORS,
        gain_p: float = 0.0,
        gain_db: float = 6.0,
        speed_p: float = 0.0,
        speeds: Sequence[float] = (0.9, 1.1),
        pitch_p: float = 0.0,
        semitones: int = 2,
        spec_p: float = 0.0,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 20,
    ):
        super().__init__()
        unknown = sorted(set(colors) - set(COLORS))
        if unknown:
            raise ValueError(f"augment.colors: unknown {unknown}; available {list(COLORS)}")
        self.sample_rate = sample_rate
        self.noise_p, self.snr_db, self.colors = noise_p, tuple(snr_db), tuple(colors)
        self.gain_p, self.gain_db = gain_p, gain_db
        self.speed_p, self.speeds = speed_p, tuple(speeds)
        self.pitch_p, self.semitones = pitch_p, semitones
        self.spec_p, self.freq_masks, self.freq_width = spec_p, freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width

    @property
    def on_waves(self) -> bool:
        """True when any wave-level step is on (the frontend must then see the augmented audio)."""
        return max(self.noise_p, self.gain_p, self.speed_p, self.pitch_p) > 0

    def _chosen(self, p: float, n: int, device) -> torch.Tensor:
        return torch.rand(n, device=device) < p

    def waves(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T), (B,) -> augmented (B, T''), new lengths (B,)."""
        b, dev = waves.shape[0], waves.device
        if self.speed_p > 0 or self.pitch_p > 0:
            waves, lengths = self._resample_each(waves, lengths)
        if self.gain_p > 0:
            db = (torch.rand(b, device=dev) * 2 - 1) * self.gain_db
            waves = waves * torch.where(self._chosen(self.gain_p, b, dev), 10 ** (db / 20), torch.ones_like(db))[:, None]
        if self.noise_p > 0:
            lo, hi = self.snr_db
            snr = lo + torch.rand(b, device=dev) * (hi - lo)
            chosen = self._chosen(self.noise_p, b, dev)
            color_of = torch.randint(len(self.colors), (b,), device=dev)
            for i, color in enumerate(self.colors):
                rows = chosen & (color_of == i)
                if rows.any():
                    noisy = add_noise(waves, lengths, snr, color)  # babble needs the whole batch
                    waves = torch.where(rows[:, None], noisy, waves)
        return waves, lengths

    def _resample_each(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = len(waves)
        out = [w[:n] for w, n in zip(waves, lengths.tolist())]
        speed = self._chosen(self.speed_p, b, waves.device).cpu()
        factor_of = torch.randint(len(self.speeds), (b,))
        for k, factor in enumerate(self.speeds):  # one resampling call per factor, over its rows of the batch
            rows = (speed & (factor_of == k)).nonzero().flatten().tolist()
            if not rows or factor == 1:
                continue
            # Played back faster or slower: new/old length as a small fraction (0.9 -> 10/9), which keeps
            # torchaudio's polyphase kernel small (1000 -> 1111 made it ~40x slower).
            ratio = Fraction(1 / factor).limit_denominator(20)
            slowed = AF.resample(waves[rows], ratio.denominator, ratio.numerator)
            for j, row in enumerate(rows):
                out[row] = slowed[j, : int(round(int(lengths[row]) * ratio))]
        pitch = self._chosen(self.pitch_p, b, waves.device).tolist()
        for i, w in enumerate(out):
            if pitch[i] and self.semitones > 0:
                steps = int(torch.randint(-self.semitones, self.semitones + 1, ()))
                if steps:
                    out[i] = AF.pitch_shift(w[None], self.sample_rate, steps)[0]
        new_lengths = [w.numel() for w in out]
        batch = torch.zeros(len(out), max(new_lengths), device=waves.device, dtype=waves.dtype)
        for row, w in zip(batch, out):
            row[: w.numel()] = w
        return batch, torch.tensor(new_lengths, device=lengths.device)

    def features(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SpecAugment on (B, F, T') with frame lengths (B,): masked cells become 0 (the feature mean)."""
        if self.spec_p <= 0:
            return feats
        b, f, t = feats.shape
        dev = feats.device
        keep = torch.ones_like(feats, dtype=torch.bool)
        rows, cols = torch.arange(f, device=dev)[None, :], torch.arange(t, device=dev)[None, :]
        for _ in range(self.freq_masks):
            width = torch.randint(0, self.freq_width + 1, (b, 1), device=dev)
            start = (torch.rand(b, 1, device=dev) * (f - width).clamp_min(1)).long()
            keep &= ~((rows >= start) & (rows < start + width))[:, :, None]
        for _ in range(self.time_masks):
            width = torch.minimum(torch.randint(0, self.time_width + 1, (b, 1), device=dev), lengths[:, None] // 5)
            start = (torch.rand(b, 1, device=dev) * (lengths[:, None] - width).clamp_min(1)).long()
            keep &= ~((cols >= start) & (cols < start + width))[:, None, :]
        chosen = self._chosen(self.spec_p, b, dev)[:, None, None]
        return torch.where(chosen & ~keep, torch.zeros_like(feats), feats)
