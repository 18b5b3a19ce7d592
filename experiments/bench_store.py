"""Which on-disk format for the store: write and random-read speed of upstream-like frames.

    python experiments/bench_store.py [--n 3000] [--rows 512] [--frames 150] [--dir DIR]

N arrays of (rows, frames) float16 (GE2E layers 2-3 over a 1.5 s utterance: 512 x 150, 150 kB) are
written, then read back in a random order twice, as training reads them (both passes mostly from the
page cache, as on a machine with memory to spare; the store's first pass also checks every entry's
CRC): ``ArrayStore`` (append-only numpy shards, os.pread), one ``.npy`` file per array (the previous
cache), and an Arrow table written by Hugging Face ``datasets`` (memory-mapped, random rows).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--dir", default=str(ROOT / ".cache" / "bench_store"))
    args = p.parse_args()
    from ser.data.store import ArrayStore

    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((args.rows, args.frames)).astype(np.float16) for _ in range(64)]
    keys = [f"{i:08x}" for i in range(args.n)]
    order = rng.permutation(args.n)
    mb = args.n * arrays[0].nbytes / 1e6
    rows = []

    store = ArrayStore(folder / "arraystore")
    w = timed(lambda: [store.put(k, arrays[i % 64]) for i, k in enumerate(keys)])
    store.close()
    reader = ArrayStore(folder / "arraystore")
    r = [timed(lambda: [reader.get(keys[i]) for i in order]) for _ in range(2)]
    rows.append(("ArrayStore (numpy shards, pread)", w, *r))

    npy = folder / "npy"
    npy.mkdir(parents=True)
    w = timed(lambda: [np.save(npy / f"{k}.npy", arrays[i % 64]) for i, k in enumerate(keys)])
    r = [timed(lambda: [np.load(npy / f"{keys[i]}.npy") for i in order]) for _ in range(2)]
    rows.append((".npy per array", w, *r))

    try:
        import datasets

        def rows_of():
            for i, k in enumerate(keys):
                yield {"key": k, "x": arrays[i % 64]}

        def write_arrow():
            feats = datasets.Features({"key": datasets.Value("string"),
                                       "x": datasets.Array2D((args.rows, args.frames), "float16")})
            datasets.Dataset.from_generator(rows_of, features=feats, cache_dir=str(folder / "hf_cache")).save_to_disk(
                str(folder / "arrow"))

        w = timed(write_arrow)
        table = datasets.load_from_disk(str(folder / "arrow")).with_format("numpy")
        r = [timed(lambda: [table[int(i)]["x"] for i in order]) for _ in range(2)]
        rows.append(("Arrow (datasets, memory-mapped)", w, *r))
    except ImportError:
        print("datasets not installed: the Arrow row is left out")

    print(f"{args.n} arrays of {args.rows} x {args.frames} float16 ({mb:.0f} MB), random order")
    print(f"{'format':34s} {'write MB/s':>11s} {'read MB/s, 1st':>15s} {'read MB/s, 2nd':>15s} {'reads/s, 2nd':>13s}")
    for name, w, r1, r2 in rows:
        print(f"{name:34s} {mb / w:11.0f} {mb / r1:15.0f} {mb / r2:15.0f} {args.n / r2:13.0f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
