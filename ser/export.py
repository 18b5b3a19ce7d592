"""usage: python -m ser.export ckpt=<checkpoint> [format=torchscript|onnx] [out=<file>] [atol=1e-4]

Writes a model that takes raw 16 kHz mono waveforms ``waves`` (B, T) float32, zero-padded, and
their ``lengths`` (B,) int64 in samples, and returns class probabilities ``probs`` (B, C); the
frontend and its normalisation statistics are inside. The class names (the columns of ``probs``)
and the sample rate go beside it in ``<out>.labels.json`` (``model.pt.labels.json``). Neither format runs pickled code when
loaded (``torch.jit.load``, ``onnxruntime.InferenceSession``).

The export is checked before it is written out: on a batch of other lengths than the one it was
traced with, exported and eager probabilities must agree (``atol``, default 1e-4).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from ser.cli import check_early, run_command

PROG = "python -m ser.export"
if __name__ == "__main__":  # --help and a mistaken option are answered before torch and Lightning load (seconds)
    check_early(PROG, __doc__, "export", sys.argv[1:])

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ser.checkpoint import load_model  # noqa: E402
from ser.models.pipeline import Pipeline  # noqa: E402

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}


class WaveformClassifier(Pipeline, nn.Module):
    """waves (B, T), lengths (B,) -> probabilities (B, C): the trained model's own ``features`` and
    ``classify``, then the calibrated softmax (``probabilities``), without the training machinery (metrics,
    loss, optimiser)."""

    def __init__(self, model: Pipeline):
        super().__init__()
        self.frontend, self.normalizer, self.encoder, self.head = model.frontend, model.normalizer, model.encoder, model.head
        self.register_buffer("temperature", model.temperature.detach().clone())

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.probabilities(self.classify(*self.features(waves, lengths)))  # (B, C), temperature-scaled


def example_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded noise-like waves of the given lengths, for tracing and checking."""
    g = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    waves = 0.1 * torch.randn(len(lengths), max(lengths), generator=g)
    return waves * (torch.arange(max(lengths))[None] < lengths_t[:, None]), lengths_t


def export(ckpt: str | Path, fmt: str, out: str | Path | None = None, atol: float = 1e-4) -> Path:
    """Export ``ckpt``; returns the model file written. Raises if exported and eager outputs differ."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: choose one of {sorted(FORMATS)}")
    model = load_model(ckpt)
    # no parameter needs a gradient, so the exported forward builds no autograd graph (its outputs
    # are plain tensors: .numpy() works on what torch.jit.load gives back)
    net = WaveformClassifier(model).eval().requires_grad_(False)
    rate = model.frontend.sample_rate
    out = Path(out) if out else Path(ckpt).resolve().parent.parent / "export" / f"model{FORMATS[fmt]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    trace_batch = example_batch([rate, rate * 3 // 4, rate // 2])
    check_batch = example_batch([int(rate * 1.7), rate // 3, int(rate * 1.2), rate], seed=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints: checked below instead
        expected = net(*check_batch)
        if fmt == "torchscript":
            traced = torch.jit.trace(net, trace_batch, check_trace=False)
            traced.save(str(out))
            got = torch.jit.load(str(out))(*check_batch)
        else:
            torch.onnx.export(
                net, trace_batch, str(out), dynamo=False, opset_version=17,
                input_names=["waves", "lengths"], output_names=["probs"],
                dynamic_axes={"waves": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probs": {0: "batch"}},
            )
            got = torch.from_numpy(run_onnx(out, *check_batch))
    diff = float((got - expected).abs().max())
    if not diff <= atol:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"{fmt} export of {ckpt} differs from the eager model by {diff:.2e} > atol={atol}; not written")
    labels = {"class_names": model.class_names, "sample_rate": rate, "inputs": "waves (B, T) float32, lengths (B,) int64",
              "output": "probs (B, C)", "checkpoint": str(ckpt), "max_abs_diff_vs_eager": diff}
    labels_path(out).write_text(json.dumps(labels, indent=2) + "\n")
    return out


def labels_path(model_file: Path) -> Path:
    """``model.pt`` -> ``model.pt.labels.json``: each export its own labels file (a .pt and an .onnx
    of one run used to overwrite each other's ``model.labels.json``)."""
    return model_file.with_name(model_file.name + ".labels.json")


def run_onnx(path: Path, waves: torch.Tensor, lengths: torch.Tensor):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError("format=onnx checks the export with onnxruntime: pip install -e '.[export]'") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"waves": waves.numpy(), "lengths": lengths.numpy()})[0]


def export_command(cfg) -> int:
    path = export(cfg.ckpt, cfg.format, cfg.out, float(cfg.atol))
    print(f"{path}\n{labels_path(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, __doc__, "export", export_command, argv)


if __name__ == "__main__":
    sys.exit(main())
