"""Mel spectrogram frontends: waves (B, T) -> (B, n_mels or n_mfcc, T'), batched on the module's device.

Windows, filterbanks and the DCT are non-persistent buffers (they follow from the settings), so
``.to(device)`` moves them with the model and checkpoints do not carry them. STFT frames are
centred with zero padding, which makes a clip's features identical whether it is computed alone
or inside a zero-padded batch: frame ``i`` of a clip of ``n`` samples is valid for ``i < n // hop + 1``.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn


def dft_basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """(2 * (n_fft // 2 + 1), 1, n_fft) real and imaginary DFT rows times the window, centred as torch.stft pads it."""
    left = (n_fft - window.numel()) // 2
    window = nn.functional.pad(window, (left, n_fft - window.numel() - left)).double()
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * torch.pi * k * torch.arange(n_fft, dtype=torch.float64)[None] / n_fft
    return (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window).float()[:, None]



def set_level(waves: torch.Tensor, lengths: torch.Tensor, level_db: float | None, mode: str = "match") -> torch.Tensor:
    """Each wave's RMS over its valid samples (padding is 0) set to ``level_db`` dBFS: ``match`` raises quieter and
    lowers louder ones, ``raise`` only raises; None leaves the waves alone."""
    if level_db is None:
        return waves
    power = waves.pow(2).sum(-1) / lengths.clamp_min(1)
    gain = (10 ** (level_db / 10) / power.clamp_min(1e-12)).sqrt()
    gain = gain.clamp_min(1.0) if mode == "raise" else gain
    return waves * gain[:, None]

class MelSpectrogram(nn.Module):
    """Waves (B, T) -> natural-log mel power (B, n_mels, T') (or the mel power itself, ``log=False``).

    Args:
        sample_rate: input rate (16000).
        n_mels: mel bands (64).
        win_ms: analysis window (Hann) in ms (25).
        hop_ms: frame shift in ms (10).
        n_fft: FFT size, at least the window (512).
        f_min, f_max: filterbank range in Hz (20, Nyquist); Slaney mel scale and area normalisation,
            as librosa's defaults.
        log: log of the mel power plus 1e-6 (True), or the power (GE2E reads power).

    >>> MelSpectrogram()(torch.randn(2, 16000)).shape
    torch.Size([2, 64, 101])
    """

    cpu_chunk_frames = 2048  # see cpu_chunks

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0,
                 n_fft: int = 512, f_min: float = 20.0, f_max: float | None = None, log: bool = True):
        super().__init__()
        self.win_length = int(round(win_ms * sample_rate / 1000))
        self.hop_length = int(round(hop_ms * sample_rate / 1000))
        if n_fft < self.win_length:
            raise ValueError(f"features.n_fft={n_fft} is shorter than the {self.win_length}-sample window")
        self.sample_rate, self.n_fft, self.n_mels, self.log = sample_rate, n_fft, n_mels, log
        self.out_features = n_mels
        window = torch.hann_window(self.win_length)
        fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min, float(f_max or sample_rate // 2), n_mels, sample_rate,
                                norm="slaney", mel_scale="slaney")  # (K, n_mels)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("fb", fb, persistent=False)
        self.register_buffer("dft_basis", dft_basis(n_fft, window), persistent=False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.hop_length + 1

    def band_hz(self) -> torch.Tensor:
        """(n_mels,) the frequency each band peaks at, in Hz."""
        return self.fb.argmax(0).float() * self.sample_rate / (2 * (self.fb.shape[0] - 1))

    def cpu_chunks(self, waves: torch.Tensor) -> list[torch.Tensor]:
        """Split a CPU batch into row groups of at most ``cpu_chunk_frames`` STFT frames.

        The complex spectrum is ~16x the size of the log-mel; in small groups it stays in cache and
        in the heap (large tensors are mmapped and page-faulted afresh on every call), which makes
        the CPU frontend ~1.5x faster at batch 32. GPUs, tracing and export get the batch whole.
        """
        rows = max(1, self.cpu_chunk_frames // (waves.shape[-1] // self.hop_length + 1))
        if waves.device.type != "cpu" or rows >= len(waves) or torch.jit.is_tracing() or torch.compiler.is_compiling() \
                or torch.onnx.is_in_onnx_export():
            return [waves]
        return list(waves.split(rows))

    def power(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, n_fft // 2 + 1, T') power spectrogram."""
        if torch.onnx.is_in_onnx_export():
            return self._power_by_dft(waves.float())
        stft = torch.stft(waves.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                          pad_mode="constant", return_complex=True)  # (B, K, T'), laid out as (B, T', K)
        power = stft.real * stft.real  # two passes over the spectrum, no temporaries, layout kept
        return power.addcmul_(stft.imag, stft.imag)

    def _power_by_dft(self, waves: torch.Tensor) -> torch.Tensor:
        """The same spectrogram as a strided convolution with a windowed DFT basis, for ONNX export
        (whose STFT has no complex output). About 20x the FLOPs of the FFT: export only."""
        frames = nn.functional.pad(waves[:, None], (self.n_fft // 2, self.n_fft // 2))  # centre=True with zeros
        out = nn.functional.conv1d(frames, self.dft_basis, stride=self.hop_length)  # (B, 2K, T')
        real, imag = out.chunk(2, dim=1)
        return real**2 + imag**2

    def rows(self, power: torch.Tensor) -> torch.Tensor:
        """Power spectrogram (B, K, T') -> (B, n_mels, T')."""
        # One (B * T', K) @ (K, n_mels) GEMM on the FFT's own (B, T', K) layout, then a transposed view.
        mel = torch.matmul(power.transpose(1, 2), self.fb)
        return (mel.add_(1e-6).log_() if self.log else mel).transpose(1, 2)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, n_mels, T // hop + 1); frames past a clip's end are not zeroed here."""
        out = [self.rows(self.power(chunk)) for chunk in self.cpu_chunks(waves)]
        return torch.cat(out) if len(out) > 1 else out[0]


class MFCCSpectrogram(MelSpectrogram):
    """Waves (B, T) -> MFCCs (B, n_mfcc, T'): an orthonormal DCT-II of the log-mel bands.

    Args:
        n_mfcc: coefficients kept (40).
        n_mels: mel bands under the DCT (64).
        Other arguments as ``MelSpectrogram``.
    """

    def __init__(self, n_mfcc: int = 40, n_mels: int = 64, **kwargs):
        super().__init__(n_mels=n_mels, **kwargs)
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"features.n_mfcc={n_mfcc} must lie in 1..n_mels={n_mels}")
        self.register_buffer("dct", AF.create_dct(n_mfcc, n_mels, norm="ortho"), persistent=False)  # (n_mels, n_mfcc)
        self.out_features = n_mfcc

    def rows(self, power: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bft,fc->bct", super().rows(power), self.dct)  # (B, n_mels, T') -> (B, n_mfcc, T')
