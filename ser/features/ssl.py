"""Self-supervised speech models' hidden states as features (``features=ssl features.model=<id or folder>``).

Any ``transformers`` wav2vec 2.0, HuBERT, WavLM or data2vec-audio model: a hub id (downloaded
once by ``transformers`` where there is network) or a local folder written by ``save_pretrained``.
What the model was pretrained on is the checkpoint's own story (wav2vec2-base: LibriSpeech 960 h;
WavLM-base+: 94 k h of LibriLight, GigaSpeech and VoxPopuli; see its model card). The input is
standardised per utterance over its valid samples where the model's feature extractor says so,
padding is masked with an attention mask for models trained with one (``feat_extract_norm=layer``);
models whose first convolution normalises over the whole input (``group``: wav2vec2-base,
HuBERT-base), and data2vec-audio (whose stacked positional convolutions carry the padding into
the clip), run clip by clip, so padding never changes a clip's features.
"""

from __future__ import annotations

import logging
import os

import torch

from ser.features.upstream import Upstream
from ser.nn import length_mask

log = logging.getLogger(__name__)
MODEL_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")


def load_pretrained(model: str):
    """(network, config, feature extractor or None) from a hub id or a local folder, with errors for people."""
    try:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel
    except ImportError as err:
        raise ImportError("features=ssl needs transformers: pip install -e '.[pretrained]'") from err
    local = os.path.isdir(os.path.expanduser(model))
    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(model))
    except (OSError, ValueError) as err:
        where = "this folder holds no config.json from save_pretrained" if local else (
            "it is not a local folder, and the Hugging Face hub could not be reached (or has no such model)")
        raise OSError(f"features.model={model!r}: {where}. Without network: download it where there is one "
                      f"(huggingface-cli download {model} --local-dir <folder>, or save_pretrained), copy the folder "
                      "here and pass features.model=<folder>") from err
    if config.model_type not in MODEL_TYPES:
        raise ValueError(f"features.model={model!r} is a {config.model_type!r} model; features=ssl reads {MODEL_TYPES}")
    net = AutoModel.from_pretrained(os.path.expanduser(model))
    try:
        extractor = AutoFeatureExtractor.from_pretrained(os.path.expanduser(model))
    except (OSError, ValueError):
        extractor = None  # a folder with the model alone: the config decides
    return net, config, extractor


class SSL(Upstream):
    """Waves (B, T) at 16 kHz -> hidden states (B, F, T') every 20 ms (for the usual 320-sample stride).

    Args:
        model: a hub id or a local folder (``save_pretrained``).
        sample_rate: must match the model's (16000 for all of these).
        layers: hidden states to use, 0 (the CNN features, projected) to the number of transformer
            layers (None: all).
        layer_weights: ``learned`` (a softmax-weighted sum, as SUPERB; F = hidden size) or ``stack``.
        freeze, lr, warmup_epochs: as ``Upstream`` (frozen by default).
        normalize_input: standardise each utterance's samples (None: as the model's feature extractor
            says, true when it has none).
    """

    def __init__(self, model: str, sample_rate: int = 16000, layers: list[int] | None = None,
                 layer_weights: str = "learned", freeze: bool = True, lr: float = 1e-5, warmup_epochs: int = 0,
                 normalize_input: bool | None = None):
        net, config, extractor = load_pretrained(model)
        rate = getattr(extractor, "sampling_rate", 16000)
        if sample_rate != rate:
            raise ValueError(f"features.model={model!r} reads {rate} Hz audio; data.sample_rate is {sample_rate}")
        super().__init__(config.num_hidden_layers + 1, config.hidden_size, layers, layer_weights, freeze, lr,
                         warmup_epochs, first_layer=0)
        self.sample_rate, self.source = sample_rate, model
        self.hop_length = int(torch.tensor(config.conv_stride).prod())
        self.normalize_input = bool(getattr(extractor, "do_normalize", True) if normalize_input is None else normalize_input)
        # Group norm spans the padding, and so do data2vec-audio's stacked positional convolutions: clip by clip.
        self.masked = config.feat_extract_norm == "layer" and config.model_type != "data2vec-audio"
        self.net = net
        # what computing a batch holds per input sample, in float32: the first convolution's output with its
        # norm and activation beside it (512 channels every 5 samples for base and large models), and every
        # hidden state; bounds the extraction batch (UpstreamCache), not the seconds of audio
        conv = config.conv_dim[0] / config.conv_stride[0]
        states = (config.num_hidden_layers + 1) * config.hidden_size / self.hop_length
        self.activation_bytes_per_sample = 4.0 * (3 * conv + 2 * states)
        self._seal()

    def settings(self) -> dict:
        return {"layers": self.layers, "normalize_input": self.normalize_input, "masked": self.masked}

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.net._get_feat_extract_output_lengths(lengths)

    def hidden_states(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        waves = waves.float()
        mask = length_mask(lengths, waves.shape[-1])
        if self.normalize_input:  # zero mean, unit variance over each clip's valid samples (padding stays 0)
            n = lengths.clamp_min(1)[:, None]
            mean = (waves * mask).sum(-1, keepdim=True) / n
            var = ((waves - mean) ** 2 * mask).sum(-1, keepdim=True) / n
            waves = (waves - mean) / (var + 1e-7).sqrt() * mask
        frames = self.frame_lengths(lengths)
        if self.masked:
            out = self.net(waves, attention_mask=mask.long(), output_hidden_states=True).hidden_states
            states = [out[layer] for layer in self.layers]  # (B, T', H) each
        else:
            clips = [self.net(w[None, :n], output_hidden_states=True).hidden_states for w, n in zip(waves, lengths.tolist())]
            t = max(clip[0].shape[1] for clip in clips)
            states = [torch.cat([torch.nn.functional.pad(c[layer], (0, 0, 0, t - c[layer].shape[1])) for c in clips])
                      for layer in self.layers]
        valid = length_mask(frames, states[0].shape[1])[:, None, :].to(states[0].dtype)  # (B, 1, T')
        return [s.transpose(1, 2) * valid for s in states], frames
