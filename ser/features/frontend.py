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

from ser.features.prosody import Prosody, Spectral
from ser.models.masking import length_mask, masked_mean_std

NORMALIZATIONS = ("global", "speaker", "utterance", "none")


def dft_basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """(2 * (n_fft // 2 + 1), 1, n_fft) real and imaginary DFT rows times the window, centred as torch.stft pads it."""
    left = (n_fft - window.numel()) // 2
    window = nn.functional.pad(window, (left, n_fft - window.numel() - left)).double()
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * torch.pi * k * torch.arange(n_fft, dtype=torch.float64)[None] / n_fft
    return (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window).float()[:, None]


class LogMel(nn.Module):
    """Waves (B, T) -> log-mel features (B, n_mels, T') and frame lengths (B,).

    Args:
        sample_rate: input rate (16000).
        n_mels: mel bands (64).
        win_ms: analysis window in ms (25).
        hop_ms: frame shift in ms (10).
        n_fft: FFT size, at least the window (512).
        f_min, f_max: filterbank range in Hz (20, Nyquist).
        deltas: 0, 1 (+ deltas) or 2 (+ deltas and delta-deltas) of the base rows.
        prosody: add F0 (semitones), voicing, log energy and zero-crossing rate rows.
        spectral: add spectral centroid, bandwidth, roll-off and flatness rows.
        normalize: ``global`` (mean 0, std 1 per band over the training split, estimated by
            ``fit_stats`` before training and saved with the model), ``utterance`` (per band over each
            utterance's own frames: removes channel offsets, but also level and spectral tilt, which
            carry emotion), ``speaker`` (per band over all of each speaker's audio, estimated by
            ``fit_speaker_stats``; removes speaker identity but keeps each utterance's level against
            the speaker's own. **Transductive** when the test speakers' unlabelled audio is used, which
            is how it is fitted in training: report such results separately. Clips without a known
            speaker fall back to the global statistics) or ``none``.

    >>> feats, lens = LogMel(normalize="utterance")(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> feats.shape, lens.tolist()
    (torch.Size([2, 64, 101]), [101, 51])
    """

    cpu_chunk_frames = 2048  # see _cpu_chunks

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
        deltas: int = 0,
        prosody: bool = False,
        spectral: bool = False,
    ):
        super().__init__()
        if deltas not in (0, 1, 2):
            raise ValueError(f"features.deltas must be 0, 1 or 2, got {deltas}")
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
        self.register_buffer("mel_fb_t", self.mel.mel_scale.fb.T.contiguous(), persistent=False)  # (n_mels, K)
        self.register_buffer("dft_basis", dft_basis(n_fft, self.mel.spectrogram.window), persistent=False)
        self.deltas = deltas
        self.prosody = Prosody(sample_rate, self.hop_length) if prosody else None
        self.spectral = Spectral(sample_rate, n_fft) if spectral else None
        self._init_stats(n_mels)

    def _init_stats(self, base_rows: int) -> None:
        self.base_rows = base_rows
        rows = base_rows * (1 + self.deltas) + 4 * (self.prosody is not None) + 4 * (self.spectral is not None)
        self.out_features = rows
        # Global statistics live in buffers, so checkpoints and exports carry them.
        self.register_buffer("mean", torch.zeros(rows))
        self.register_buffer("std", torch.ones(rows))
        self.register_buffer("fitted", torch.tensor(False))
        # Per-speaker statistics (normalize=speaker): one row per speaker index of the data module.
        self.register_buffer("speaker_mean", torch.zeros(0, rows))
        self.register_buffer("speaker_std", torch.ones(0, rows))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The speaker table's size is known only after fitting: take the checkpoint's (older
        # checkpoints, from before normalize=speaker existed, have none: an empty table).
        for name in ("speaker_mean", "speaker_std"):
            key = prefix + name
            if key not in state_dict and prefix + "mean" in state_dict:
                state_dict[key] = torch.zeros(0, self.out_features)
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.hop_length + 1

    def _cpu_chunks(self, waves: torch.Tensor) -> list[torch.Tensor]:
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
        spec = self.mel.spectrogram  # torchaudio's settings; called directly to skip its |X| then square
        stft = torch.stft(waves.float(), spec.n_fft, spec.hop_length, spec.win_length, spec.window, center=True,
                          pad_mode="constant", return_complex=True)  # (B, K, T'), laid out as (B, T', K)
        power = stft.real * stft.real  # two passes over the spectrum, no temporaries, layout kept
        return power.addcmul_(stft.imag, stft.imag)

    def _power_by_dft(self, waves: torch.Tensor) -> torch.Tensor:
        """The same spectrogram as a strided convolution with a windowed DFT basis, for ONNX export
        (whose STFT has no complex output). About 20x the FLOPs of the FFT: export only."""
        n_fft = self.mel.spectrogram.n_fft
        frames = nn.functional.pad(waves[:, None], (n_fft // 2, n_fft // 2))  # centre=True with zeros
        out = nn.functional.conv1d(frames, self.dft_basis, stride=self.hop_length)  # (B, 2K, T')
        real, imag = out.chunk(2, dim=1)
        return real**2 + imag**2

    def base(self, power: torch.Tensor) -> torch.Tensor:
        """Power spectrogram -> (B, n_mels, T') natural-log mel power."""
        # One (B * T', K) @ (K, n_mels) GEMM on the FFT's own (B, T', K) layout, then a transposed view.
        return torch.matmul(power.transpose(1, 2), self.mel_fb_t.T).add_(1e-6).log_().transpose(1, 2)

    def features(self, waves: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) -> (B, F, T') unnormalised rows: base (+ deltas) (+ prosody) (+ spectral)."""
        feats, spectral = [], []
        for chunk in self._cpu_chunks(waves):
            power = self.power(chunk)
            feats.append(self.base(power))
            if self.spectral is not None:
                spectral.append(self.spectral(power))
        feats = torch.cat(feats) if len(feats) > 1 else feats[0]
        # Zero the padding before each delta, so frames near the end match a lone clip's.
        n = feats.shape[-1]
        mask = 1.0 if lengths is None else length_mask(self.frame_lengths(lengths).clamp(max=n), n)[:, None]
        rows = [feats * mask]
        for _ in range(self.deltas):
            rows.append(torchaudio.functional.compute_deltas(rows[-1], mode="constant") * mask)
        if self.prosody is not None:
            rows.append(self.prosody(waves))
        if self.spectral is not None:
            rows.append(torch.cat(spectral) if len(spectral) > 1 else spectral[0])
        return torch.cat(rows, dim=1) if len(rows) > 1 else rows[0]

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, T), lengths (B,) in samples -> feats (B, F, T'), frame lengths (B,); padding is 0.

        ``speakers`` (B,) indexes the speaker table for ``normalize=speaker`` (-1 or None: global).
        """
        feats = self.features(waves, lengths)  # (B, F, T')
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[-1])
        mask = length_mask(frames, feats.shape[-1])  # (B, T')
        if self.normalize == "utterance":
            mean, std = masked_mean_std(feats, mask)
            feats = (feats - mean[..., None]) / std[..., None]
        elif self.normalize in ("global", "speaker"):
            if not torch.compiler.is_exporting() and not torch.jit.is_tracing() and not self.fitted:
                raise RuntimeError(f"features.normalize={self.normalize}: call fit_stats(loader) on training data first")
            mean, std = self.mean[None], self.std[None]  # (1, F), or (B, F) per speaker below
            if self.normalize == "speaker" and speakers is not None and len(self.speaker_mean):
                known = ((speakers >= 0) & (speakers < len(self.speaker_mean)))[:, None]
                row = speakers.clamp(0, len(self.speaker_mean) - 1)
                mean = torch.where(known, self.speaker_mean[row], mean)
                std = torch.where(known, self.speaker_std[row], std)
            feats = (feats - mean[..., None]) / std[..., None]
        if self.normalize == "none" and self.prosody is None and self.spectral is None:
            return feats, frames  # features() already zeroed the padding of the base rows and deltas
        return feats * mask[:, None, :], frames

    @torch.no_grad()
    def _moments(self, batches, groups: int = 1, key: str | None = None) -> tuple[torch.Tensor, ...]:
        """Sum, sum of squares and frame count per band and group (``batch[key]`` picks the group)."""
        total = torch.zeros(groups, self.out_features, dtype=torch.float64, device=self.mean.device)
        total_sq, count = torch.zeros_like(total), torch.zeros(groups, 1, dtype=torch.float64, device=self.mean.device)
        for batch in batches:
            lengths = batch["lengths"].to(self.mean.device)
            feats = self.features(batch["waves"].to(self.mean.device), lengths).double()
            mask = length_mask(self.frame_lengths(lengths).clamp(max=feats.shape[-1]), feats.shape[-1])[:, None, :]
            group = batch[key].to(feats.device) if key else torch.zeros(len(feats), dtype=torch.long, device=feats.device)
            total.index_add_(0, group, (feats * mask).sum(2))
            total_sq.index_add_(0, group, (feats**2 * mask).sum(2))
            count.index_add_(0, group, mask.sum(2).double())
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for part in (total, total_sq, count):  # under DDP each rank saw its share of the batches
                torch.distributed.all_reduce(part)
        return total, total_sq, count

    @staticmethod
    def _mean_std(total, total_sq, count) -> tuple[torch.Tensor, torch.Tensor]:
        mean = total / count.clamp_min(1)
        return mean.float(), (total_sq / count.clamp_min(1) - mean**2).clamp_min(1e-8).sqrt().float()

    def fit_stats(self, batches) -> None:
        """Per-band mean and std over every valid frame of ``batches`` (dicts with waves, lengths)."""
        total, total_sq, count = self._moments(batches)
        if not count.sum():
            raise ValueError(f"features.normalize={self.normalize}: no training frames to estimate statistics from")
        mean, std = self._mean_std(total, total_sq, count)
        self.mean.copy_(mean[0])
        self.std.copy_(std[0])
        self.fitted.fill_(True)

    def fit_speaker_stats(self, batches, n_speakers: int) -> None:
        """Per-speaker, per-band mean and std from ``batches`` with a ``speakers`` index (B,).

        Speakers without frames keep the global statistics (call ``fit_stats`` first).
        """
        total, total_sq, count = self._moments(batches, n_speakers, key="speakers")
        mean, std = self._mean_std(total, total_sq, count)
        seen = count > 0
        self.speaker_mean = torch.where(seen, mean, self.mean)
        self.speaker_std = torch.where(seen, std, self.std)


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

    def base(self, power: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bft,fc->bct", super().base(power), self.dct)  # (B, n_mels, T') -> (B, n_mfcc, T')
