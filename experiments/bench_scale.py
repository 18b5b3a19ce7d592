"""Scale: what a run costs as the corpus grows, through the on-disk store (ser/data/store.py).

    python experiments/bench_scale.py [--hours 1 10 50] [--upstream-hours 1] [--root DIR] [override ...]

For each size, a corpus of synthetic utterances (2-4 s of 16 kHz, 16-bit audio, 20 speakers, 4
classes; what they sound like does not matter here) is written once under ``--root`` with a CSV
manifest, then measured in a fresh process each (so peak RSS is that run's alone):

- **log-mel**: ``data=manifest features=logmel model=cnn``, one epoch on a speaker hold-out split.
- **upstream**: ``features=ssl`` over a frozen random-weight model of wav2vec2-base's dimensions
  (12 transformer layers of 768, a 512-channel convolutional front; memory and speed do not depend on
  the weights), ``features.layers=[6] model=pool``: one epoch over the stored frames.

``--ddp-hours H`` also runs one process against two CPU ranks (``trainer=ddp trainer.devices=2``) on the
H-hour corpus and prints the peak memory of each whole process tree (RSS, and PSS, which counts a page
the ranks share once).

Printed per row: store build time (decoding into the audio store, and for the upstream extracting its
frames into the feature store; a later run reads them), store size on disk, peak RSS, and training
utterances per second (the epoch after the build). ``--in-memory`` runs the same with
``data.cache_dir=null data.feature_cache_dir=null`` (today's path before the store: everything in RAM).
Extra arguments are Hydra overrides for every run (``trainer=gpu``, ``loader.num_workers=2``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("anger", "happiness", "neutral", "sadness")
SPEAKERS = 20
RATE = 16000


def make_corpus(folder: Path, hours: float, seed: int = 0) -> Path:
    """``hours`` of 2-4 s utterances as 16-bit wav files and ``manifest.csv`` (written once)."""
    import soundfile as sf

    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, total, i = [], 0.0, 0
    t = np.arange(4 * RATE) / RATE
    while total < hours * 3600:
        seconds = float(rng.uniform(2.0, 4.0))
        n = int(seconds * RATE)
        label, speaker = CLASSES[i % len(CLASSES)], f"s{(i // len(CLASSES)) % SPEAKERS:02d}"
        f0 = 100 + 40 * (i % len(CLASSES)) + 5 * (i % SPEAKERS)
        wave = 0.2 * np.sin(2 * np.pi * f0 * t[:n]) * (1 + np.sin(2 * np.pi * 3 * t[:n])) / 2
        wave += 0.01 * rng.standard_normal(n)
        path = folder / speaker / f"{i:07d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, wave, RATE, subtype="PCM_16")
        rows.append({"path": str(path), "label": label, "speaker": speaker})
        total += seconds
        i += 1
    tmp = manifest.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, manifest)
    return manifest


def random_wav2vec2_base(folder: Path) -> Path:
    """A wav2vec2-base-sized model with random weights, saved once (nothing is downloaded)."""
    if not (folder / "config.json").is_file():
        import torch
        from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder)  # the defaults are wav2vec2-base's dimensions
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(folder)
    return folder


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def child(args) -> None:
    """One measured run in this process: load (building the stores), then one timed epoch."""
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from experiments.bench_train import StepTimer
    from ser.build import build_datamodule, build_module
    from ser.callbacks import FitFeatureNorm
    from ser.cli import compose_config
    from ser.data.upstream_cache import Upstream
    from ser.train import reuse_freed_memory

    reuse_freed_memory()
    cfg = compose_config("train", json.loads(args.child))
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(args.cache) / "run")
    L.seed_everything(cfg.seed)
    start = time.perf_counter()
    dm = build_datamodule(cfg)
    dm.load()
    dm.use_fold(instantiate(cfg.split).folds(dm.corpus.utterances)[0])
    module = build_module(cfg, dm.corpus.class_names, dm.train_class_counts())
    timer = StepTimer()
    trainer = instantiate(cfg.trainer, max_epochs=args.epochs, logger=False, callbacks=[timer, FitFeatureNorm()],
                          enable_checkpointing=False, limit_val_batches=0, num_sanity_val_steps=0,
                          enable_progress_bar=False, enable_model_summary=False)
    # a frozen upstream: extracted (or read) here
    dm.use_upstream(Upstream.of(module.frontend, trainer.strategy.root_device, dm.corpus.upstream_cache))
    build = time.perf_counter() - start
    trainer.fit(module, datamodule=dm)
    epoch = timer.epochs[-1]
    print(json.dumps({"build_s": build, "utt_per_s": epoch["items"] / epoch["wall"], "items": epoch["items"],
                      "utterances": len(dm.corpus.utterances),
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def measure(overrides: list[str], cache: Path, epochs: int) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(overrides), "--cache", str(cache), "--epochs", str(epochs)]
    env = os.environ | {"SER_CACHE": str(cache)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{' '.join(overrides)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in GB summed over ``pid`` and its descendants: PSS shares each page among the processes
    that map it, so pages two ranks share (libraries, the page cache they map) count once for the pair."""
    pids, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        pids.append(p)
        try:
            frontier += [int(c) for t in os.listdir(f"/proc/{p}/task")
                         for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            pass
    rss = pss = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 2**20, pss / 2**20


def run_sampled(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` (train.py), sampling its process tree's memory every 0.2 s: the peaks of the sums."""
    start = time.perf_counter()
    # stderr to a file, not a pipe read at the end: progress bars fill a pipe's 64 KB and the run blocks on it
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True)
        peak_rss = peak_pss = 0.0
        while proc.poll() is None:
            rss, pss = tree_memory(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.2)
        log.seek(0)
        err = log.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return {"wall_s": time.perf_counter() - start, "peak_rss_gb": peak_rss, "peak_pss_gb": peak_pss}


def ddp_pair(manifest: Path, cache: Path, overrides: list[str]) -> None:
    """One process against two CPU ranks (trainer=ddp trainer.devices=2), one epoch, the store warm."""
    base = [sys.executable, "train.py", "data=manifest", f"data.root={manifest}", "features=logmel", "model=cnn",
            "split=holdout", "split.val=0", "trainer.max_epochs=1", "+trainer.enable_progress_bar=false", *overrides]
    env = os.environ | {"SER_CACHE": str(cache)}
    subprocess.run(base + [f"hydra.run.dir={cache / 'warm'}", "+trainer.limit_train_batches=1"], env=env, cwd=ROOT,
                   check=True, capture_output=True)  # builds the audio store, so both rows read it
    one = run_sampled(base + [f"hydra.run.dir={cache / 'one'}"], env)
    two = run_sampled(base + ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                              f"hydra.run.dir={cache / 'ddp'}"], env)
    for name, r in (("1 process", one), ("2 DDP ranks", two)):
        print(f"{name:12s} peak RSS {r['peak_rss_gb']:.2f} GB (PSS {r['peak_pss_gb']:.2f} GB), {r['wall_s']:.0f} s")
    rss, pss = two["peak_rss_gb"] / one["peak_rss_gb"], two["peak_pss_gb"] / one["peak_pss_gb"]
    print(f"pair / one: RSS {rss:.2f}x, PSS {pss:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, nargs="*", default=[1, 10, 50])
    p.add_argument("--upstream-hours", type=float, nargs="*", default=[1])
    p.add_argument("--root", default=str(ROOT / ".cache" / "bench_scale"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--in-memory", action="store_true")
    p.add_argument("--ddp-hours", type=float, default=None, help="also: one process against two DDP CPU ranks")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    args, overrides = p.parse_known_args()
    if args.child:
        return child(args)
    root = Path(args.root)
    memory = ["data.cache_dir=null", "data.feature_cache_dir=null"] if args.in_memory else []
    common = ["split=holdout", "split.val=0", *memory, *overrides]
    jobs = [("log-mel", h, ["features=logmel", "model=cnn"]) for h in args.hours]
    if args.upstream_hours:
        model = random_wav2vec2_base(root / "wav2vec2-base-random")
        jobs += [("upstream", h, ["features=ssl", f"features.model={model}", "features.layers=[6]", "model=pool"])
                 for h in args.upstream_hours]
    print(f"{'path':9s} {'hours':>6s} {'utts':>7s} {'build s':>8s} {'store GB':>9s} {'peak RSS GB':>12s} {'utt/s':>8s}")
    for kind, hours, extra in jobs:
        manifest = make_corpus(root / f"corpus_{hours:g}h", hours)
        cache = root / f"cache_{kind}_{hours:g}h{'_memory' if args.in_memory else ''}"
        r = measure(["data=manifest", f"data.root={manifest}", *extra, *common], cache, args.epochs)
        size = du(cache / "audio") + du(cache / "features")
        print(f"{kind:9s} {hours:6g} {r['utterances']:7d} {r['build_s']:8.1f} {size / 1e9:9.2f} "
              f"{r['peak_rss_gb']:12.2f} {r['utt_per_s']:8.1f}", flush=True)
    if args.ddp_hours:
        print(f"\nDDP on {args.ddp_hours:g} h (log-mel CNN, one epoch, memory of the whole process tree):")
        ddp_pair(make_corpus(root / f"corpus_{args.ddp_hours:g}h", args.ddp_hours),
                 root / f"cache_ddp_{args.ddp_hours:g}h{'_memory' if args.in_memory else ''}", memory + overrides)


if __name__ == "__main__":
    main()
