"""usage: python -m ser.predict ckpt=<checkpoint> input=<file or folder> [window_s=4 hop_s=2] [device=cpu]

Prints CSV on stdout: ``path,label,<one probability column per class>``. Any sample rate and
channel count is accepted (resampled, downmixed). With ``window_s`` a recording longer than the
window gives one row per window, its path suffixed ``@start-end`` (seconds). Bad files are
reported on stderr and do not stop the others; the exit status is 1 if any file failed.
Options come from conf/predict.yaml.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from ser.cli import check_early, run_command

PROG = "python -m ser.predict"
if __name__ == "__main__":  # --help and a mistaken option are answered before torch and Lightning load (seconds)
    check_early(PROG, __doc__, "predict", sys.argv[1:])

import torch  # noqa: E402

from ser.audio import AudioError, load_audio  # noqa: E402
from ser.checkpoint import load_model  # noqa: E402
from ser.corpora.base import AUDIO_EXTENSIONS  # noqa: E402


def audio_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
    raise FileNotFoundError(f"input={target}: no such file or folder")


def windows(wave: torch.Tensor, rate: int, window_s: float | None, hop_s: float | None) -> list[tuple[float, torch.Tensor]]:
    """(start seconds, piece) pairs every ``hop_s`` until a window reaches the end, so the last
    (possibly shorter) piece is scored too; the whole wave when no window is set or it is short."""
    if not window_s or wave.numel() <= window_s * rate:
        return [(0.0, wave)]
    win, hop = int(window_s * rate), max(1, int((hop_s or window_s) * rate))
    pieces = []
    for start in range(0, wave.numel(), hop):
        pieces.append((start / rate, wave[start : start + win]))
        if start + win >= wave.numel():
            break
    return pieces


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, __doc__, "predict", predict, argv)


@torch.no_grad()
def predict(cfg) -> int:
    device = cfg.device
    model = load_model(cfg.ckpt, device)
    rate = model.frontend.sample_rate
    window_s, hop_s = cfg.window_s, cfg.hop_s
    if (window_s is not None and window_s <= 0) or (hop_s is not None and hop_s <= 0):
        raise ValueError(f"window_s={window_s} hop_s={hop_s}: both must be positive seconds (or null)")
    out = csv.writer(sys.stdout)
    out.writerow(["path", "label", *model.class_names])
    failed = 0
    for path in audio_files(Path(cfg.input)):
        try:
            wave = load_audio(path, rate)
        except AudioError as err:
            print(f"ser.predict: skipped {err}", file=sys.stderr)
            failed += 1
            continue
        for start, piece in windows(wave, rate, window_s, hop_s):
            logits = model(piece[None].to(device), torch.tensor([piece.numel()], device=device))
            probs = model.probabilities(logits)[0]  # temperature-scaled when training calibrated it
            name = str(path)
            if piece.numel() < wave.numel():
                name += f"@{start:.2f}-{start + piece.numel() / rate:.2f}"
            out.writerow([name, model.class_names[int(probs.argmax())], *(f"{p:.6f}" for p in probs.tolist())])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
