"""The GE2E speaker encoder's hidden states as features (``features=ge2e``).

GE2E (Wan et al. 2018) is a 3-layer LSTM (256 units) over 40 mel bands at 16 kHz, trained for
speaker verification on LibriSpeech and VoxCeleb 1 and 2; the weights ship inside the
``resemblyzer`` wheel (``resemblyzer/pretrained.pt``, Apache-2.0; the ``pretrained`` extra).
Speaker embeddings are its last layer's final state, but emotion lives in the hidden states of
layers 2 and 3 over time, which is what this frontend gives. It is computed here in batched,
masked torch on the model's device: resemblyzer's mel spectrogram (librosa's, as power), its
per-utterance level normalisation, and the LSTM run forward only, so padding after a clip never
reaches its frames. Resemblyzer's voice-activity trimming of long pauses is not applied.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ser.features.spectrogram import MelSpectrogram, set_level
from ser.features.upstream import Upstream
from ser.nn import length_mask

HIDDEN, LAYERS, MELS = 256, 3, 40


def resemblyzer_weights() -> Path:
    """The path of ``pretrained.pt`` in the installed resemblyzer package (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.origin:
        raise ImportError("features=ge2e takes the GE2E weights from the resemblyzer package, which is not installed: "
                          "pip install -e '.[pretrained]' (or pass features.weights=<path to pretrained.pt>)")
    return Path(spec.origin).parent / "pretrained.pt"


class GE2ENet(nn.Module):
    """The encoder's three LSTM layers, kept apart so every layer's hidden states can be read."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.ModuleList(nn.LSTM(MELS if i == 0 else HIDDEN, HIDDEN, batch_first=True) for i in range(LAYERS))

    def load_resemblyzer(self, path: Path) -> None:
        """Resemblyzer's checkpoint holds one 3-layer ``lstm``; layer ``l``'s tensors end in ``_l<l>``."""
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        for i, lstm in enumerate(self.lstm):
            lstm.load_state_dict({f"{w}_l0": state[f"lstm.{w}_l{i}"]
                                  for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})


class GE2E(Upstream):
    """Waves (B, T) at 16 kHz -> GE2E hidden states (B, F, T') every 10 ms, and frame lengths (B,).

    Args:
        sample_rate: must be 16000 (the encoder's rate).
        layers: hidden states to use, 1-3 (None: all three; ``[2, 3]`` carry the most emotion).
        layer_weights: ``stack`` (F = 256 per layer) or ``learned`` (a weighted sum, F = 256).
        level_db: raise each utterance's RMS level to this many dBFS first, as resemblyzer does (-30;
            louder ones stay as they are); None leaves the level alone.
        level_mode: ``raise`` (resemblyzer's: quieter utterances only) or ``match`` (every utterance to
            ``level_db``, louder ones lowered too: a corpus's recording level then never reaches the
            features, which matters across corpora).
        freeze, lr, warmup_epochs: as ``Upstream`` (frozen by default).
        weights: a ``pretrained.pt`` in resemblyzer's format; None takes the installed package's.
    """

    def __init__(self, sample_rate: int = 16000, layers: list[int] | None = None, layer_weights: str = "stack",
                 level_db: float | None = -30.0, level_mode: str = "raise", freeze: bool = True, lr: float = 1e-5,
                 warmup_epochs: int = 0,
                 weights: str | None = None):
        if sample_rate != 16000:
            raise ValueError(f"features=ge2e reads 16 kHz audio; data.sample_rate is {sample_rate}: set it to 16000")
        super().__init__(LAYERS, HIDDEN, layers, layer_weights, freeze, lr, warmup_epochs)
        if level_mode not in ("raise", "match"):
            raise ValueError(f"features.level_mode={level_mode!r}: choose raise (resemblyzer's) or match")
        self.sample_rate, self.level_db, self.level_mode = sample_rate, level_db, level_mode
        self.mel = MelSpectrogram(sample_rate, n_mels=MELS, win_ms=25, hop_ms=10, n_fft=400, f_min=0.0, log=False)
        self.hop_length = self.mel.hop_length
        path = Path(weights) if weights else resemblyzer_weights()
        if not path.is_file():
            raise FileNotFoundError(f"features.weights={path}: no such file (resemblyzer's pretrained.pt)")
        self.source = str(path)
        self.net = GE2ENet()
        self.net.load_resemblyzer(path)
        self._seal()

    def settings(self) -> dict:
        settings = {"layers": self.layers, "level_db": self.level_db}
        return settings | ({"level_mode": self.level_mode} if self.level_mode != "raise" else {})  # old keys stay valid

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.mel.frame_lengths(lengths)

    def level(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Raise each wave's RMS over its valid samples to ``level_db`` dBFS (``match``: lower louder ones too)."""
        return set_level(waves, lengths, self.level_db, self.level_mode)

    def hidden_states(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        mel = self.mel(self.level(waves.float(), lengths))  # (B, 40, T') mel power
        frames = self.frame_lengths(lengths).clamp(max=mel.shape[-1])
        mask = length_mask(frames, mel.shape[-1])[:, None, :].to(mel.dtype)  # (B, 1, T')
        x, states = mel.transpose(1, 2), []  # (B, T', 40)
        for number, lstm in enumerate(self.net.lstm[: max(self.layers)], start=1):
            x, _ = lstm(x)  # (B, T', 256); forward in time only, so the padding after a clip never reaches it
            if number in self.layers:
                states.append(x.transpose(1, 2) * mask)
        return [states[sorted(self.layers).index(layer)] for layer in self.layers], frames
