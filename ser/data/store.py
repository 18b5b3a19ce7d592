"""An on-disk store of arrays (decoded audio, a frozen upstream's frames), read back lazily as memory maps.

One store is a folder of append-only shards. Every writing process has its own pair of files,

    <folder>/<writer>.bin     the arrays' bytes, one after another
    <folder>/<writer>.jsonl   one line per array: digest, offset, dtype, shape, CRC-32

so two runs (folds, sweep jobs, DDP ranks) filling the same store at once never write the same file,
and a reader sees the union of every writer's index. An array's bytes are written before its index
line, so a run killed mid-write leaves at most bytes nobody points to, or half a line that does not
parse; both are skipped. An entry whose bytes are missing (a truncated shard) or whose CRC does not
match (checked once per entry and process, on first read) is reported with a log line and treated as
absent, so the caller computes it again and the new copy is appended. A full disk stops the run with
a message naming the folder.

Nothing is loaded until a batch asks for it: ``get`` reads one entry with ``os.pread`` into memory that
is freed with it, so a process holds only what its batches hold, and loader workers and ranks on one
machine share the shards through the operating system's page cache instead of each keeping a copy.
``view`` gives a zero-copy ``numpy.memmap`` view instead (its pages count as the process's once read).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import socket
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class StoreFullError(RuntimeError):
    """The disk under a store is full."""


@dataclass(frozen=True)
class Entry:
    shard: str  # the writer's name: <shard>.bin holds the bytes
    offset: int
    dtype: str
    shape: tuple[int, ...]
    crc: int
    meta: dict | None = field(default=None, compare=False)  # what the writer said about it (e.g. its source)

    @functools.cached_property  # read per batch item: np.prod costs more than the small reads it sizes
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


class ArrayStore:
    """Arrays keyed by a digest in ``folder`` (created on first write).

    Args:
        folder: the store's folder; one store per kind of content (e.g. one upstream's settings).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.entries: dict[str, list[Entry]] = {}
        self._read_lines: dict[str, int] = {}  # index file -> bytes of it already parsed
        self._maps: dict[str, np.memmap] = {}
        self._fds: dict[str, int] = {}
        self._verified: set[tuple[str, int]] = set()
        self._bin = self._index = None
        self.refresh()

    # -- reading ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read index lines other writers have added since the last call."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.jsonl")):
            done = self._read_lines.get(path.name, 0)
            with open(path, "rb") as f:
                f.seek(done)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next refresh
            for line in complete.splitlines():
                try:
                    r = json.loads(line)
                    entry = Entry(r["shard"], int(r["offset"]), str(r["dtype"]), tuple(r["shape"]), int(r["crc"]),
                                  r.get("meta"))
                except (ValueError, KeyError, TypeError):
                    log.warning("store %s: an unreadable index line in %s is skipped", self.folder, path.name)
                    continue
                self.entries.setdefault(r["digest"], []).append(entry)
            self._read_lines[path.name] = done + len(complete)

    def __contains__(self, digest: str) -> bool:
        return self.get(digest) is not None

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, digest: str) -> np.ndarray | None:
        """The array stored under ``digest``, read into memory of its own (``os.pread``: through the page
        cache, which every process on the machine shares, and freed with the array); None if absent or damaged."""
        found = self._locate(digest)
        return None if found is None else found[1]

    def check(self, digest: str) -> Entry | None:
        """The entry under ``digest`` if it is whole (its bytes on disk, its CRC matching: read once per
        process, not kept); None if absent or damaged, which the caller then computes and stores again."""
        found = self._locate(digest)
        return None if found is None else found[0]

    def view(self, digest: str) -> np.ndarray | None:
        """The array stored under ``digest`` as a read-only memory map (no copy; its pages count toward this
        process's resident memory once touched); None if absent or damaged."""
        found = self._locate(digest)
        if found is None:
            return None
        entry = found[0]
        path = self.folder / f"{entry.shard}.bin"
        mapped = self._maps.get(entry.shard)
        if mapped is None or len(mapped) < entry.offset + entry.nbytes:
            mapped = self._maps[entry.shard] = np.memmap(path, dtype=np.uint8, mode="r")
        return mapped[entry.offset : entry.offset + entry.nbytes].view(entry.dtype).reshape(entry.shape)

    def _locate(self, digest: str) -> tuple[Entry, np.ndarray] | None:
        for entry in list(self.entries.get(digest, ())):
            raw = self._read(digest, entry)
            if raw is not None:
                return entry, raw.view(entry.dtype).reshape(entry.shape)
            self.entries[digest].remove(entry)
        if not self.entries.get(digest):
            self.entries.pop(digest, None)
        return None

    def _read(self, digest: str, entry: Entry) -> np.ndarray | None:
        """The entry's bytes (uint8, memory of their own), once its shard is long enough and (first time in this
        process) its CRC matches. ``os.preadv`` copies them from the page cache straight into the array."""
        path = self.folder / f"{entry.shard}.bin"
        fd = self._fds.get(entry.shard)
        if fd is None:
            try:
                fd = self._fds[entry.shard] = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                log.warning("store %s: %s is missing (%s); it will be rebuilt", self.folder, path.name, digest[:12])
                return None
        raw = np.empty(entry.nbytes, np.uint8)
        got = os.preadv(fd, [raw], entry.offset) if entry.nbytes else 0
        if got < entry.nbytes:
            log.warning("store %s: %s is truncated (%s ends at byte %d of %d); it will be rebuilt",
                        self.folder, path.name, digest[:12], entry.offset + entry.nbytes, entry.offset + got)
            return None
        if (entry.shard, entry.offset) not in self._verified:
            if zlib.crc32(raw) != entry.crc:
                log.warning("store %s: %s in %s fails its checksum (a corrupt write); it will be rebuilt",
                            self.folder, digest[:12], path.name)
                return None
            self._verified.add((entry.shard, entry.offset))
        return raw

    # -- writing ---------------------------------------------------------------------------------
    def put(self, digest: str, array: np.ndarray, meta: dict | None = None) -> Entry:
        """Append ``array`` under ``digest`` (its bytes, then its index line, with ``meta`` if given)."""
        array = np.ascontiguousarray(array)
        data = array.tobytes()
        try:
            if self._bin is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._bin = open(self.folder / f"{self.writer}.bin", "ab")
                self._index = open(self.folder / f"{self.writer}.jsonl", "ab")
            offset = self._bin.tell()
            self._bin.write(data)
            self._bin.flush()  # the bytes reach the OS before the line that points at them
            entry = Entry(self.writer, offset, array.dtype.str, tuple(array.shape), zlib.crc32(data), meta)
            line = {"digest": digest, "shard": entry.shard, "offset": offset, "dtype": entry.dtype,
                    "shape": list(entry.shape), "crc": entry.crc} | ({"meta": meta} if meta else {})
            self._index.write((json.dumps(line) + "\n").encode())
            self._index.flush()
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFullError(f"the disk under the store {self.folder} is full ({err.strerror}): free space "
                                     "there, or point the store to another disk (data.store_dir=<dir>)") from err
            raise
        self.entries.setdefault(digest, []).insert(0, entry)
        self._read_lines[f"{self.writer}.jsonl"] = self._index.tell()
        return entry

    def close(self) -> None:
        for f in (self._bin, self._index):
            if f is not None:
                f.close()
        for fd in self._fds.values():
            os.close(fd)
        self._bin = self._index = None
        self._fds, self._maps = {}, {}

    def __getstate__(self):  # loader workers get the index and open their own maps
        state = self.__dict__.copy()
        state.update(_maps={}, _fds={}, _bin=None, _index=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # never another's files

    def disk_bytes(self) -> int:
        """Bytes on disk, every shard."""
        return sum(p.stat().st_size for p in self.folder.glob("*.bin")) if self.folder.is_dir() else 0


class Stored:
    """One entry of an ``ArrayStore``, read when asked for: what a dataset holds instead of the array.

    ``shape`` is known without reading; ``load()`` returns it as a tensor (one ``pread``).
    """

    __slots__ = ("store", "digest", "shape", "dtype", "scale")

    def __init__(self, store: ArrayStore, digest: str, shape: tuple[int, ...], dtype: str, scale: float | None = None):
        """``scale``: integers stored for floats (``float32(x) / scale``), e.g. 16-bit audio as int16 and 32768."""
        self.store, self.digest, self.shape, self.dtype, self.scale = store, digest, tuple(shape), dtype, scale

    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def loaded_nbytes(self) -> int:
        """Bytes of what ``load()`` returns (scaled integers come back as float32)."""
        return self.numel() * (4 if self.scale else np.dtype(self.dtype).itemsize)

    def load(self):
        import torch

        array = self.store.get(self.digest)
        if array is None:
            raise RuntimeError(f"store {self.store.folder}: the entry {self.digest[:12]} went missing or was damaged "
                               "after this run stored it (another process removed it?); run again to rebuild it")
        tensor = torch.from_numpy(array)
        return tensor.float() / self.scale if self.scale else tensor

    def __repr__(self) -> str:
        return f"Stored({self.digest[:12]}, shape={self.shape}, dtype={self.dtype})"


def resident(items: list, budget_mb: float, what: str) -> list:
    """``items`` (tensors or ``Stored`` handles) read into memory if, read, they take at most ``budget_mb``
    (``data.resident_mb``): a small corpus is then as fast as holding it in memory always was, and a large one
    stays on disk, read per batch, so memory stays flat as the corpus grows."""
    handles = [x for x in items if isinstance(x, Stored)]
    if not handles:
        return items
    size = sum(x.loaded_nbytes() for x in handles)
    if size > budget_mb * 2**20:
        log.info("%s: %.2f GB, read per batch from the store (over data.resident_mb=%g)", what, size / 1e9, budget_mb)
        return items
    log.info("%s: %.2f GB, held in memory (data.resident_mb=%g)", what, size / 1e9, budget_mb)
    return [materialize(x) for x in items]


def materialize(x):
    """``x`` as a tensor: a ``Stored`` entry is read, a tensor passes through."""
    return x.load() if isinstance(x, Stored) else x

