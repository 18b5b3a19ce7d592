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

Reads are ``numpy.memmap`` views: nothing is loaded until a batch touches it, and loader workers and
ranks on one machine share the pages through the operating system's page cache instead of each
holding a copy.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import uuid
import zlib
from dataclasses import dataclass
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

    @property
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
                    entry = Entry(r["shard"], int(r["offset"]), str(r["dtype"]), tuple(r["shape"]), int(r["crc"]))
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
        """The array stored under ``digest``, as a read-only memory map; None if absent or damaged."""
        for entry in list(self.entries.get(digest, ())):
            array = self._view(digest, entry)
            if array is not None:
                return array
            self.entries[digest].remove(entry)
        if not self.entries.get(digest):
            self.entries.pop(digest, None)
        return None

    def _view(self, digest: str, entry: Entry) -> np.ndarray | None:
        path = self.folder / f"{entry.shard}.bin"
        end = entry.offset + entry.nbytes
        mapped = self._maps.get(entry.shard)
        if mapped is None or len(mapped) < end:  # a shard still growing is mapped again at its new size
            size = path.stat().st_size if path.is_file() else 0
            if size < end:
                log.warning("store %s: %s is truncated (%s ends at byte %d of %d); it will be rebuilt",
                            self.folder, path.name, digest[:12], end, size)
                return None
            mapped = self._maps[entry.shard] = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
        raw = mapped[entry.offset : end]
        if (entry.shard, entry.offset) not in self._verified:
            if zlib.crc32(raw) != entry.crc:
                log.warning("store %s: %s in %s fails its checksum (a corrupt write); it will be rebuilt",
                            self.folder, digest[:12], path.name)
                return None
            self._verified.add((entry.shard, entry.offset))
        return raw.view(entry.dtype).reshape(entry.shape)

    # -- writing ---------------------------------------------------------------------------------
    def put(self, digest: str, array: np.ndarray) -> None:
        """Append ``array`` under ``digest`` (its bytes, then its index line)."""
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
            entry = Entry(self.writer, offset, array.dtype.str, tuple(array.shape), zlib.crc32(data))
            line = {"digest": digest, "shard": entry.shard, "offset": offset, "dtype": entry.dtype,
                    "shape": list(entry.shape), "crc": entry.crc}
            self._index.write((json.dumps(line) + "\n").encode())
            self._index.flush()
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFullError(f"the disk under the store {self.folder} is full ({err.strerror}): free space "
                                     "there, or point the store to another disk (data.store_dir=<dir>)") from err
            raise
        self.entries.setdefault(digest, []).insert(0, entry)
        self._read_lines[f"{self.writer}.jsonl"] = self._index.tell()

    def close(self) -> None:
        for f in (self._bin, self._index):
            if f is not None:
                f.close()
        self._bin = self._index = None

    def __getstate__(self):  # loader workers get the index and open their own maps
        state = self.__dict__.copy()
        state.update(_maps={}, _bin=None, _index=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # never another's files

    def disk_bytes(self) -> int:
        """Bytes on disk, every shard."""
        return sum(p.stat().st_size for p in self.folder.glob("*.bin")) if self.folder.is_dir() else 0
