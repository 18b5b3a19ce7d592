"""Spectrogram frontends: a spectrogram part plus extra rows, batched on the module's device.

The frontend contract, which the upstream frontends (``ser.features.ge2e``, ``ser.features.ssl``)
keep too: ``forward(waves (B, T), lengths (B,)) -> feats (B, F, T'), frames (B,)`` with zeros past
each clip's frames, ``out_features`` (F), ``hop_length`` (samples per frame), ``sample_rate``,
``frame_lengths(lengths)`` and ``row_groups()`` (a name for every group of rows, which the
diagnosis occludes). Normalisation is not part of the frontend: ``ser.features.normalize``.
"""

from __future__ import annotations

import torch
from torch import nn

from ser.features.rows import Deltas, Prosody, Spectral
from ser.features.spectrogram import MelSpectrogram, MFCCSpectrogram, set_level
from ser.nn import length_mask


class SpectralFrontend(nn.Module):
    """A spectrogram's rows (+ deltas) (+ prosody) (+ spectral) as (B, F, T'), and frame lengths (B,).

    Args:
        spectrogram: ``MelSpectrogram`` or ``MFCCSpectrogram``.
        deltas: 0, 1 (+ deltas) or 2 (+ deltas and delta-deltas) of the spectrogram's rows.
        prosody: add F0 (semitones), voicing, log energy and zero-crossing rate rows.
        spectral: add spectral centroid, bandwidth, roll-off and flatness rows.
        level_db: every utterance's RMS level over its valid samples set to this many dBFS first (``set_level``;
            the energy row then carries no recording level either); None: as recorded.
    """

    cacheable = False  # cheap to compute, and its rows change with wave-level augmentation

    def __init__(self, spectrogram: MelSpectrogram, deltas: int = 0, prosody: bool = False, spectral: bool = False,
                 level_db: float | None = None):
        super().__init__()
        self.level_db = level_db
        if deltas not in (0, 1, 2):
            raise ValueError(f"features.deltas must be 0, 1 or 2, got {deltas}")
        self.spectrogram = spectrogram
        self.sample_rate, self.hop_length = spectrogram.sample_rate, spectrogram.hop_length
        self.deltas = Deltas(deltas) if deltas else None
        self.prosody = Prosody(self.sample_rate, self.hop_length) if prosody else None
        self.spectral = Spectral(self.sample_rate, spectrogram.n_fft) if spectral else None
        self.base_rows = spectrogram.out_features
        self.out_features = self.base_rows * (1 + deltas) + 4 * bool(prosody) + 4 * bool(spectral)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.spectrogram.frame_lengths(lengths)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, T), lengths (B,) in samples -> feats (B, F, T'), frame lengths (B,); padding is 0."""
        waves = set_level(waves, lengths, self.level_db)
        base, spectral = [], []
        for chunk in self.spectrogram.cpu_chunks(waves):
            power = self.spectrogram.power(chunk)  # (b, K, T'), shared by the base and spectral rows
            base.append(self.spectrogram.rows(power))
            if self.spectral is not None:
                spectral.append(self.spectral(power))
        feats = torch.cat(base) if len(base) > 1 else base[0]  # (B, F0, T')
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[-1])
        mask = length_mask(frames, feats.shape[-1])[:, None, :].to(feats.dtype)  # (B, 1, T')
        rows = [feats * mask]
        if self.deltas is not None:
            rows += self.deltas(rows[0], mask)
        if self.prosody is not None:
            rows.append(self.prosody(waves) * mask)
        if self.spectral is not None:
            rows.append((torch.cat(spectral) if len(spectral) > 1 else spectral[0]) * mask)
        return (torch.cat(rows, dim=1) if len(rows) > 1 else rows[0]), frames

    def row_groups(self, n_bands: int = 8) -> dict[str, list[int]]:
        """Named groups of output rows: ``n_bands`` slices of the spectrogram rows (mel bands with the
        frequencies they span, or MFCC coefficients), then deltas, delta-deltas, prosody, spectral."""
        base = self.base_rows
        step = max(1, -(-base // n_bands))
        is_mfcc = isinstance(self.spectrogram, MFCCSpectrogram)
        peak_hz = self.spectrogram.band_hz()
        groups: dict[str, list[int]] = {}
        for start in range(0, base, step):
            stop = min(base, start + step)
            name = f"MFCC {start}-{stop - 1}" if is_mfcc else \
                f"mel {start}-{stop - 1} ({peak_hz[start]:.0f}-{peak_hz[stop - 1]:.0f} Hz)"
            groups[name] = list(range(start, stop))
        row = base
        for name in ("deltas", "delta-deltas")[: self.deltas.order if self.deltas else 0]:
            groups[name] = list(range(row, row + base))
            row += base
        for name, part in (("prosody (F0, voicing, energy, ZCR)", self.prosody),
                           ("spectral (centroid, bandwidth, roll-off, flatness)", self.spectral)):
            if part is not None:
                groups[name] = list(range(row, row + 4))
                row += 4
        return groups


class LogMel(SpectralFrontend):
    """Waves (B, T) -> log-mel (+ extra rows) (B, F, T') and frame lengths (B,).

    Args:
        sample_rate, n_mels, win_ms, hop_ms, n_fft, f_min, f_max: as ``MelSpectrogram`` (16000, 64,
            25 ms, 10 ms, 512, 20 Hz, Nyquist).
        deltas, prosody, spectral: extra rows, as ``SpectralFrontend``.
        level_db: every utterance's RMS level set to this many dBFS before the spectrogram (None: as recorded).

    >>> feats, frames = LogMel()(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> feats.shape, frames.tolist()
    (torch.Size([2, 64, 101]), [101, 51])
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0,
                 n_fft: int = 512, f_min: float = 20.0, f_max: float | None = None, deltas: int = 0,
                 prosody: bool = False, spectral: bool = False, level_db: float | None = None):
        spectrogram = MelSpectrogram(sample_rate, n_mels, win_ms, hop_ms, n_fft, f_min, f_max)
        super().__init__(spectrogram, deltas, prosody, spectral, level_db)


class MFCC(SpectralFrontend):
    """Waves (B, T) -> MFCCs (+ extra rows) (B, F, T') and frame lengths (B,).

    Args:
        n_mfcc: coefficients kept (40).
        n_mels: mel bands under the DCT (64).
        Other arguments as ``LogMel``.
    """

    def __init__(self, n_mfcc: int = 40, n_mels: int = 64, sample_rate: int = 16000, win_ms: float = 25.0,
                 hop_ms: float = 10.0, n_fft: int = 512, f_min: float = 20.0, f_max: float | None = None,
                 deltas: int = 0, prosody: bool = False, spectral: bool = False, level_db: float | None = None):
        spectrogram = MFCCSpectrogram(n_mfcc, n_mels, sample_rate=sample_rate, win_ms=win_ms, hop_ms=hop_ms,
                                      n_fft=n_fft, f_min=f_min, f_max=f_max)
        super().__init__(spectrogram, deltas, prosody, spectral, level_db)
