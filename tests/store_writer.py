"""Writers for the store tests. A module of its own that imports only numpy and the store: a spawned writer
process imports the module its target lives in, and the test module's imports (Lightning, torch) took seconds."""

import numpy as np

from ser.data.store import ArrayStore


def arrays(n=6, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        dtype = [np.float16, np.int16, np.float32][i % 3]
        out[f"d{i:02d}"] = (rng.standard_normal((3, 5 + i)) * 100).astype(dtype)
    return out


def write(folder, seed, order):
    items = arrays(12, seed)
    store = ArrayStore(folder)
    for key in order:
        if store.get(key) is None:
            store.put(key, items[key])
        store.refresh()
    store.close()
