"""What every pretrained upstream frontend shares: layer choice, freezing, caching and checkpoints.

An upstream's hidden states are the features: waves (B, T), lengths (B,) -> (B, F, T'), frames (B,),
the frontend contract of ``ser.features.frontend``. Subclasses (``GE2E``, ``SSL``) hold the
pretrained network as ``self.net`` and implement ``hidden_states``.

Frozen (the default), the upstream is a fixed function of the audio: ``encode`` (the upstream's
selected layers, stacked) is computed once per utterance and cached by the data module, and only
``from_cache`` (the learned layer weighting, if any) runs per batch. Frozen weights are not written
into checkpoints (they would make every checkpoint as large as the upstream): a checkpoint keeps a
fingerprint of them, and loading takes them from their source again, failing if they differ.
"""

from __future__ import annotations

import hashlib
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)
LAYER_WEIGHTS = ("stack", "learned")


def fingerprint(module: nn.Module) -> int:
    """A 60-bit digest of every parameter's bytes (names included), as a Python int."""
    digest = hashlib.sha1()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return int(digest.hexdigest()[:15], 16)


class LayerMix(nn.Module):
    """A learned softmax-weighted sum of layers (SUPERB's featurizer): (B, L * H, T') -> (B, H, T').

    Each layer's frame vectors are layer-normalised first (no affine), so layers of different scale
    compete on their content; the weights start equal.
    """

    def __init__(self, num_layers: int, hidden_size: int):
        super().__init__()
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        # One layer at a time: the whole stack normalised and weighted at once is two more copies of the
        # input (a batch of 13 x 768 rows: 256 MB each), this is a few of one layer's.
        weights = self.logits.softmax(0)
        out = None
        for k, layer in enumerate(stacked.split(self.hidden_size, dim=1)):  # (B, H, T') each, float16 if stored so
            normed = nn.functional.layer_norm(layer.transpose(1, 2).float(), (self.hidden_size,)) * weights[k]
            out = normed if out is None else out + normed
        return out.transpose(1, 2)  # (B, H, T')


class Upstream(nn.Module):
    """Base of pretrained upstream frontends.

    Args:
        num_layers: layers the network has (hidden states numbered 1..num_layers; SSL models also 0,
            the CNN features before the transformer).
        hidden_size: H, rows per layer.
        layers: which hidden states to use (None: all), e.g. ``[2, 3]``.
        layer_weights: ``stack`` (the layers' rows one under another: F = len(layers) * H) or
            ``learned`` (a softmax-weighted sum, trained with the model: F = H).
        freeze: true keeps the upstream fixed (no gradient, eval mode, computed once and cached);
            false fine-tunes it with its own learning rate ``lr`` after ``warmup_epochs`` frozen epochs.
        lr: the upstream's learning rate when fine-tuned (an optimizer parameter group).
        warmup_epochs: epochs with the upstream frozen before fine-tuning starts (the head learns first).
        first_layer: the number of the first hidden state (1 for GE2E, 0 for SSL models).
    """

    def __init__(self, num_layers: int, hidden_size: int, layers: list[int] | None = None,
                 layer_weights: str = "stack", freeze: bool = True, lr: float = 1e-5, warmup_epochs: int = 0,
                 first_layer: int = 1):
        super().__init__()
        valid = list(range(first_layer, first_layer + num_layers))
        self.layers = list(valid if layers is None else layers)
        if not self.layers or any(layer not in valid for layer in self.layers):
            raise ValueError(f"features.layers={layers}: this upstream has hidden states {valid}; choose among them")
        if layer_weights not in LAYER_WEIGHTS:
            raise ValueError(f"features.layer_weights={layer_weights!r}: choose one of {LAYER_WEIGHTS}")
        if warmup_epochs < 0:
            raise ValueError(f"features.warmup_epochs must be 0 or more, got {warmup_epochs}")
        self.hidden_size, self.first_layer = hidden_size, first_layer
        self.freeze, self.lr, self.warmup_epochs = bool(freeze), float(lr), int(warmup_epochs)
        self.mix = LayerMix(len(self.layers), hidden_size) if layer_weights == "learned" else None
        self.out_features = hidden_size * (1 if self.mix else len(self.layers))
        self.trainable = False  # set_trainable(True) when fine-tuning starts

    # -- subclasses -------------------------------------------------------------------------
    net: nn.Module  # the pretrained network, whose weights come from outside the checkpoint
    source: str  # where its weights come from, for messages
    sample_rate: int
    hop_length: int

    def hidden_states(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """waves (B, T), lengths (B,) -> the hidden states ``self.layers`` [(B, H, T')], frames (B,)."""
        raise NotImplementedError

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def settings(self) -> dict:
        """What ``encode`` depends on besides the weights, for the cache key."""
        return {"layers": self.layers}

    # -- the pipeline ----------------------------------------------------------------------
    def _seal(self) -> None:
        """Call at the end of a subclass's ``__init__``, once ``self.net`` holds its weights."""
        self.register_buffer("fingerprint", torch.tensor(fingerprint(self.net), dtype=torch.int64))
        self.set_trainable(False)
        self.register_state_dict_post_hook(_drop_frozen_weights)

    @property
    def cacheable(self) -> bool:
        """True when ``encode`` is a fixed function of the audio (frozen for the whole run)."""
        return self.freeze

    def cache_key(self) -> str:
        """Names the cached features: the upstream, its weights and its settings."""
        settings = ",".join(f"{k}={v}" for k, v in sorted(self.settings().items()))
        return f"{type(self).__name__}-{int(self.fingerprint):015x}-{hashlib.sha1(settings.encode()).hexdigest()[:10]}"

    def encode(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, T), lengths (B,) -> the chosen layers stacked (B, len(layers) * H, T'), frames (B,); padding 0."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.trainable):
            states, frames = self.hidden_states(waves, lengths)
        return torch.cat(states, dim=1) if len(states) > 1 else states[0], frames

    def from_cache(self, stacked: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``encode``'s output (B, L * H, T'), float32 or as stored (float16) -> features (B, F, T') float32:
        the learned layer weighting, if any."""
        if self.mix is None:
            return stacked.float(), frames
        return self.mix(stacked) * (torch.arange(stacked.shape[-1], device=frames.device) < frames[:, None])[:, None], frames

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, T), lengths (B,) in samples -> feats (B, F, T'), frames (B,); padding is 0."""
        return self.from_cache(*self.encode(waves, lengths))

    def row_groups(self) -> dict[str, list[int]]:
        """One group per layer when stacked; eight slices of the hidden units when layers are mixed."""
        h = self.hidden_size
        if self.mix is None:
            return {f"layer {layer}": list(range(i * h, (i + 1) * h)) for i, layer in enumerate(self.layers)}
        step = -(-h // 8)
        return {f"units {s}-{min(h, s + step) - 1} (mixed layers)": list(range(s, min(h, s + step)))
                for s in range(0, h, step)}

    # -- freezing and fine-tuning ---------------------------------------------------------
    def set_trainable(self, trainable: bool) -> None:
        """Fine-tuning on (gradients, the network's own train mode) or off (no gradient, eval mode)."""
        self.trainable = bool(trainable) and not self.freeze
        self.net.requires_grad_(self.trainable)
        self.net.train(self.training and self.trainable)

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.train(mode and self.trainable)  # frozen: dropout and layer drop stay off in training
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        net = prefix + "net."
        if not any(k.startswith(net) for k in state_dict):
            # A frozen upstream's weights are not in checkpoints: take this one's, if they are the same.
            stored = state_dict.get(prefix + "fingerprint")
            if stored is not None and int(stored) != int(self.fingerprint):
                raise ValueError(f"this checkpoint was trained on upstream weights with fingerprint {int(stored):015x}, "
                                 f"but {self.source} now holds {int(self.fingerprint):015x}: install or point "
                                 "features.model at the weights it was trained with")
            for name, value in self.net.state_dict().items():
                state_dict[net + name] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def _drop_frozen_weights(module: Upstream, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict post hook: a frozen upstream's weights stay out of checkpoints (its fingerprint stays in)."""
    if module.freeze:
        for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
            del state_dict[key]
