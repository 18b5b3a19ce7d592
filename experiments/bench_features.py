"""Feature extraction speed on EmoDB: this project's batched frontend against librosa per file.

    python experiments/bench_features.py [--emodb DIR] [--device cpu|cuda] [--batch 32] [--repeats 10] [--no-librosa]

The audio is decoded once, outside the timing. Our frontend runs over length-bucketed batches
(64-band log-mel, 25 ms / 10 ms, n_fft 512; and 40 MFCCs on the same bands), librosa over each
file with the same parameters, after checking that the two agree (log-mel within 1e-3 on the
natural-log power of bands above -10, as in tests/test_librosa_parity.py). Speed is seconds of
audio per second of compute ("x realtime"), the best of ``--repeats`` timed passes for each contender,
each right after an untimed one; the contenders interleave, so a drift in machine speed hits all alike. The last line is

    logmel_x_realtime=<float> librosa_x_realtime=<float> ratio=<float>

``--no-librosa`` times our frontend alone (a GPU machine without librosa); the last line is then
``logmel_x_realtime=<float>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.features.frontend import MFCC, LogMel  # noqa: E402

DEFAULT_EMODB = os.environ.get("SER_EMODB", str(ROOT.parent / "shared" / "data" / "emodb"))
MEL = dict(sr=16000, n_fft=512, hop_length=160, win_length=400, window="hann", center=True, pad_mode="constant",
           power=2.0, n_mels=64, fmin=20.0, fmax=8000.0, htk=False, norm="slaney")


def load_corpus(root: Path) -> list[np.ndarray]:
    files = sorted((root / "wav").glob("*.wav"))
    if not files:
        sys.exit(f"bench_features: no wav files under {root}/wav; pass --emodb DIR or set SER_EMODB")
    waves = []
    for f in files:
        x, rate = sf.read(f, dtype="float32")
        if rate != 16000 or x.ndim != 1:
            sys.exit(f"bench_features: {f} is not 16 kHz mono")
        waves.append(x)
    return waves


def buckets(waves: list[np.ndarray], batch: int, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Length-sorted batches of zero-padded waves, already on the device (as a data loader would give)."""
    order = np.argsort([w.size for w in waves])
    out = []
    for i in range(0, len(order), batch):
        chunk = [waves[j] for j in order[i : i + batch]]
        lengths = torch.tensor([w.size for w in chunk])
        padded = torch.zeros(len(chunk), int(lengths.max()))
        for row, w in zip(padded, chunk):
            row[: w.size] = torch.from_numpy(w)
        out.append((padded.to(device), lengths.to(device)))
    return out


@torch.inference_mode()
def pass_frontend(frontend, batches, device) -> float:
    """Seconds for one pass of ``frontend`` over every batch."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for waves, lengths in batches:
        frontend(waves, lengths)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def pass_librosa(waves, kind: str) -> float:
    """Seconds for one pass of librosa over every file (log-mel, or MFCCs of the dB mel)."""
    import librosa

    start = time.perf_counter()
    for x in waves:
        mel = librosa.feature.melspectrogram(y=x, **MEL)
        if kind == "mfcc":
            librosa.feature.mfcc(S=10 * np.log10(mel + 1e-6), n_mfcc=40, dct_type=2, norm="ortho")
        else:
            np.log(mel + 1e-6)
    return time.perf_counter() - start


def check_agreement(waves, frontend) -> float:
    """Largest |ours - librosa| on natural-log mel power over bands above -10, for 20 files."""
    import librosa

    worst = 0.0
    for x in waves[:: max(1, len(waves) // 20)]:
        ours = frontend(torch.from_numpy(x)[None], torch.tensor([x.size]))[0][0].numpy()
        ref = np.log(librosa.feature.melspectrogram(y=x, **MEL) + 1e-6)
        loud = ref > -10
        worst = max(worst, float(np.abs(ours[loud] - ref[loud]).max()))
    if worst > 1e-3:
        sys.exit(f"bench_features: log-mel differs from librosa by {worst:.2e} > 1e-3; fix parity before timing")
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emodb", default=DEFAULT_EMODB)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-librosa", action="store_true", help="time our frontend alone, with no parity check")
    args = p.parse_args()
    device = torch.device(args.device)
    waves = load_corpus(Path(args.emodb))
    seconds = sum(w.size for w in waves) / 16000
    logmel = LogMel().eval()
    diff = None if args.no_librosa else check_agreement(waves, logmel)
    batches = buckets(waves, args.batch, device)
    mfcc = MFCC(n_mfcc=40).eval().to(device)
    logmel = logmel.to(device)
    contenders = {
        f"ser log-mel 64 ({device.type}, batch {args.batch})": lambda: pass_frontend(logmel, batches, device),
        f"ser MFCC 40 ({device.type}, batch {args.batch})": lambda: pass_frontend(mfcc, batches, device),
    }
    if not args.no_librosa:
        contenders["librosa log-mel 64 (per file)"] = lambda: pass_librosa(waves, "logmel")
        contenders["librosa MFCC 40 (per file)"] = lambda: pass_librosa(waves, "mfcc")
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(args.repeats):  # rounds interleave the contenders, so drifts in machine speed hit all alike
        for name, run in contenders.items():
            run()  # warm-up right before each timed pass: the one before it left other data in cache and heap
            best[name] = min(best[name], run())
    rows = list(best.items())
    agreement = "no librosa check" if diff is None else f"log-mel agrees with librosa within {diff:.1e}"
    print(f"{len(waves)} EmoDB files, {seconds:.0f} s of audio; torch threads {torch.get_num_threads()}; {agreement}")
    print(f"{'frontend':45s} {'seconds':>8s} {'x realtime':>11s}")
    for name, t in rows:
        print(f"{name:45s} {t:8.3f} {seconds / t:11.0f}")
    ours = seconds / rows[0][1]
    if args.no_librosa:
        print(f"logmel_x_realtime={ours:.1f}")
        return
    lib_mel, lib_mfcc = rows[2][1], rows[3][1]
    theirs = seconds / lib_mel
    print(f"MFCC ratio (ser / librosa): {lib_mfcc / rows[1][1]:.1f}")
    print(f"logmel_x_realtime={ours:.1f} librosa_x_realtime={theirs:.1f} ratio={ours / theirs:.2f}")


if __name__ == "__main__":
    main()
