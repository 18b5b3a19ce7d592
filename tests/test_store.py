"""The on-disk array store (ser/data/store.py): lazy memory-mapped reads, damaged entries found and rebuilt,
concurrent writers that do not corrupt it, and a full disk that names the store."""

import errno
import logging
import multiprocessing as mp
import pickle

import numpy as np
import pytest

from ser.build import build_datamodule
from ser.data.store import ArrayStore, StoreFullError
from tests.store_writer import arrays as _arrays
from tests.store_writer import write as _write


def test_arrays_come_back_equal_as_read_only_maps(tmp_path):
    arrays = _arrays()
    store = ArrayStore(tmp_path / "s")
    for key, a in arrays.items():
        store.put(key, a)
    store.close()
    again = ArrayStore(tmp_path / "s")  # another process's view: from the index files alone
    assert len(again) == len(arrays)
    for key, a in arrays.items():
        b, v = again.get(key), again.view(key)
        assert b.dtype == v.dtype == a.dtype and np.array_equal(a, b) and np.array_equal(a, v)
        assert b.flags.writeable and not v.flags.writeable  # a copy of its own; a read-only map
    assert again.get("absent") is None
    assert pickle.loads(pickle.dumps(again)).get("d01") is not None  # loader workers reopen the maps


def test_a_truncated_shard_is_rebuilt_with_a_log_line(tmp_path, caplog):
    arrays = _arrays()
    store = ArrayStore(tmp_path / "s")
    for key, a in arrays.items():
        store.put(key, a)
    store.close()
    shard = next((tmp_path / "s").glob("*.bin"))
    size = shard.stat().st_size
    with open(shard, "r+b") as f:  # a run killed mid-write, or a disk that filled up
        f.truncate(size - 10)
    reader = ArrayStore(tmp_path / "s")
    with caplog.at_level(logging.WARNING, logger="ser.data.store"):
        assert reader.get("d05") is None
    assert "truncated" in caplog.text and "rebuilt" in caplog.text
    assert np.array_equal(reader.get("d00"), arrays["d00"])  # the entries before the cut still read
    reader.put("d05", arrays["d05"])
    assert np.array_equal(ArrayStore(tmp_path / "s").get("d05"), arrays["d05"])


def test_a_corrupt_entry_fails_its_checksum_and_half_an_index_line_is_skipped(tmp_path, caplog):
    arrays = _arrays()
    store = ArrayStore(tmp_path / "s")
    for key, a in arrays.items():
        store.put(key, a)
    store.close()
    shard = next((tmp_path / "s").glob("*.bin"))
    with open(shard, "r+b") as f:
        f.seek(3)
        f.write(b"\xff\xff")  # inside d00
    index = next((tmp_path / "s").glob("*.jsonl"))
    with open(index, "ab") as f:
        f.write(b'{"digest": "half", "shard"')  # killed while writing the line
    reader = ArrayStore(tmp_path / "s")
    with caplog.at_level(logging.WARNING, logger="ser.data.store"):
        assert reader.get("d00") is None
    assert "checksum" in caplog.text
    assert reader.get("half") is None and np.array_equal(reader.get("d01"), arrays["d01"])


def test_two_processes_writing_one_store_read_back_as_one_writer(tmp_path):
    keys = sorted(_arrays(12))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(tmp_path / "both", 0, order)) for order in (keys, keys[::-1])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    _write(tmp_path / "one", 0, keys)
    both, one = ArrayStore(tmp_path / "both"), ArrayStore(tmp_path / "one")
    assert sorted(both.entries) == sorted(one.entries) == keys
    for key in keys:
        assert np.array_equal(both.get(key), one.get(key))


def test_a_full_disk_stops_with_the_store_named(tmp_path, monkeypatch):
    store = ArrayStore(tmp_path / "s")
    store.put("a", np.zeros(4, np.float32))

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def tell(self):
            return 0

    monkeypatch.setattr(store, "_bin", Full())
    with pytest.raises(StoreFullError, match=str(tmp_path / "s")):
        store.put("b", np.zeros(4, np.float32))


def test_a_small_store_is_held_in_memory_and_a_large_one_read_per_batch(tmp_path, make_cfg, caplog):
    """data.resident_mb: stored items that fit are read once into memory (tensors, equal to the store's), more
    stay handles read per item; the data module's audio follows it."""
    import torch

    from ser.data.store import Stored, resident

    arrays = _arrays()
    store = ArrayStore(tmp_path / "s")
    handles = [Stored(store, key, a.shape, a.dtype.str) for key, a in arrays.items() if store.put(key, a)]
    size = sum(a.nbytes for a in arrays.values())
    with caplog.at_level(logging.INFO, logger="ser.data.store"):
        held = resident(handles, size / 2**20, "test items")
        kept = resident(handles, size / 2**20 / 2, "test items")
    assert all(torch.is_tensor(x) for x in held) and kept is handles
    assert all(np.array_equal(x.numpy(), a) for x, a in zip(held, arrays.values()))
    assert "held in memory" in caplog.text and "read per batch" in caplog.text
    audio = f"data.cache_dir={tmp_path / 'audio'}"  # the smoke corpus: any corpus's audio takes the same path
    dm = build_datamodule(make_cfg("debug=smoke", audio, "data.resident_mb=0"))
    dm.load()
    assert all(isinstance(dm.corpus.stored(i), Stored) for i in range(len(dm.corpus)))
    small = build_datamodule(make_cfg("debug=smoke", audio))
    small.load()
    assert all(torch.is_tensor(small.corpus.stored(i)) for i in range(len(small.corpus)))
    assert all(torch.equal(dm.corpus.audio(i), small.corpus.audio(i)) for i in range(len(dm.corpus)))
