"""Hugging Face datasets as a corpus (``data=hf``): a ``save_to_disk`` folder, an audiofolder, parquet files
or a hub id, with its columns mapped to the project's (``data.columns``) and its labels to canonical names.

The audio column is read undecoded (``Audio(decode=False)``: the file's bytes or its path), since recent
``datasets`` releases decode through torchcodec, which this stack avoids; the project's own soundfile and
soxr path decodes it, with the same checks as every adapter (unreadable, empty, silent, NaN, ...). A row
is named ``hf://<dataset>/<split>/<row>`` in messages and lists (or by its file, where the dataset keeps
paths), and its bytes are read only when it is decoded into the audio store.

``streaming=True`` (parquet files or a hub id) never keeps a copy of the dataset: one pass over the
label and speaker columns lists the rows, and a second pass reads the audio in row order as the audio
store decodes it, so only the decoded store is ever on disk (a corpus that does not fit twice).
"""

from __future__ import annotations

import hashlib
import io
import logging
from functools import partial
from pathlib import Path

from ser.corpora.base import Corpus
from ser.corpora.labels import canonical
from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)
COLUMNS = {"audio": "audio", "label": "label", "speaker": "speaker", "split": None}
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "val", "valid": "val", "val": "val",
               "dev": "val", "test": "test", "eval": "test"}


def _datasets():
    try:
        import datasets
    except ImportError as err:
        raise ImportError("data=hf reads Hugging Face datasets: pip install -e '.[hf]'") from err
    return datasets


class HFCorpus(Corpus):
    """Args:
    root: a ``save_to_disk`` folder, an audiofolder (audio files and ``metadata.csv``), a parquet file or a
        folder of them, or a hub id (downloaded by ``datasets`` where there is network).
    columns: the dataset's column for each of ``audio``, ``label``, ``speaker`` and, optionally, ``split``
        (train/validation/test per row, for ``split=predefined``; without it a dataset's own splits are used).
    label_map: the dataset's label -> a canonical name (``{ang: anger, 0: neutral}``); unlisted labels go
        through the usual spellings (``happy`` -> happiness). Integer class labels are named by the dataset's
        ``ClassLabel`` first.
    splits: which of the dataset's splits to read (None: every one).
    name: what the corpus is called in titles (default: the folder's or hub id's name).
    streaming: parquet files or a hub id read as a stream (``datasets``' ``streaming=True``): no local copy of
        the dataset; rows already in the audio store are not read again. A ``save_to_disk`` folder or an
        audiofolder is read in place anyway (Arrow is memory-mapped), so there it changes nothing.
    """

    name = "hf"

    def __init__(self, root: str, columns: dict | None = None, label_map: dict | None = None,
                 splits: list[str] | None = None, name: str | None = None, streaming: bool = False):
        super().__init__(root)
        self.source = str(root)
        unknown = sorted(set(columns or {}) - set(COLUMNS))
        if unknown:
            raise ValueError(f"data.columns: unknown {unknown}; map any of {list(COLUMNS)} to the dataset's columns")
        self.columns = COLUMNS | {k: v for k, v in (columns or {}).items() if v is not None}
        self.label_map = {str(k): canonical(v) for k, v in (label_map or {}).items()}
        self.splits = list(splits) if splits else None
        self.name = name or Path(self.source.rstrip("/")).name or "hf"
        self.streaming = bool(streaming)
        self._parts: dict = {}
        self._cursors: dict = {}  # streaming: split -> the audio pass in progress

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> dict:
        """{split name: Dataset}, the audio column undecoded."""
        if self._parts:
            return self._parts
        ds = _datasets()
        root = Path(self.source).expanduser()
        if root.is_dir() and ((root / "dataset_dict.json").is_file() or (root / "state.json").is_file()):
            loaded = ds.load_from_disk(str(root))
        elif root.is_file() and root.suffix == ".parquet" or root.is_dir() and any(root.glob("*.parquet")):
            files = [str(root)] if root.is_file() else sorted(str(p) for p in root.glob("*.parquet"))
            loaded = ds.load_dataset("parquet", data_files=files, streaming=self.streaming)
        elif root.is_dir():
            loaded = self._audiofolder(ds, root)
        elif "/" in self.source and not self.source.startswith((".", "/", "~")):
            # a hub id: datasets downloads it (or with streaming reads it as it goes) where there is network
            loaded = ds.load_dataset(self.source, streaming=self.streaming)
        else:
            raise FileNotFoundError(f"data.root={self.source}: no such folder or file; give a save_to_disk folder, an "
                                    "audiofolder, parquet files or a hub id (owner/name)")
        if self.streaming and not isinstance(loaded, (ds.IterableDataset, ds.IterableDatasetDict)):
            log.info("data.corpus.streaming: %s is read in place (memory-mapped), so it is not streamed", self.source)
            self.streaming = False
        parts = dict(loaded) if isinstance(loaded, (ds.DatasetDict, ds.IterableDatasetDict)) else {"train": loaded}
        if self.splits:
            missing = sorted(set(self.splits) - set(parts))
            if missing:
                raise ValueError(f"data.corpus.splits: {missing} not in {self.source}; it has {sorted(parts)}")
            parts = {k: parts[k] for k in self.splits}
        for split, part in parts.items():
            names = part.column_names if part.column_names is not None else list(part.features or {})
            absent = [f"{k}={v}" for k, v in self.columns.items() if v and v not in names]
            if absent:
                raise ValueError(f"data.columns: {', '.join(absent)}: no such column in {self.source} ({split}); it "
                                 f"has {names}. Map them, e.g. data.columns.label=emotion")
            parts[split] = part.cast_column(self.columns["audio"], ds.Audio(decode=False))
        self._parts = parts
        return parts

    def _audiofolder(self, ds, root: Path):
        """An audiofolder (audio files and ``metadata.csv`` or ``.jsonl`` with ``file_name``), read as its metadata
        plus a path per row: ``datasets``' own audiofolder builder encodes the audio through torchcodec."""
        meta = next((root / n for n in ("metadata.csv", "metadata.jsonl") if (root / n).is_file()), None)
        if meta is None:
            raise FileNotFoundError(f"data.root={root}: neither a save_to_disk folder, parquet files nor an audiofolder "
                                    "with metadata.csv / metadata.jsonl (file_name, label and speaker columns)")
        table = ds.load_dataset("csv" if meta.suffix == ".csv" else "json", data_files=str(meta))["train"]
        if "file_name" not in table.column_names:
            raise ValueError(f"{meta}: no file_name column; an audiofolder's metadata names each file in file_name")
        files = [str((meta.parent / f).resolve()) for f in table["file_name"]]
        audio = self.columns["audio"]
        table = table.remove_columns([c for c in (audio,) if c in table.column_names])
        return table.add_column(audio, [{"bytes": None, "path": f} for f in files])

    def fingerprint(self) -> str:
        """Changes when the dataset does: part of every row's audio-store key."""
        prints = [getattr(part, "_fingerprint", "") or "" for part in self.open().values()]
        return hashlib.sha1("|".join([self.source, *prints]).encode()).hexdigest()[:16]

    def _stream_print(self, rows: list) -> str:
        """A stream has no fingerprint of its own: its source and every row's label and speaker stand in."""
        return hashlib.sha1(repr((self.source, rows)).encode()).hexdigest()[:16]

    # -- listing --------------------------------------------------------------------------------
    def scan(self) -> tuple[list[Utterance], list[dict]]:
        utterances, problems, seen = [], [], []
        cols = self.columns
        key = None if self.streaming else self.fingerprint()
        for split, part in self.open().items():
            names = self._label_names(part)
            meta = part.select_columns([c for c in (cols["label"], cols["speaker"], cols["split"]) if c])
            paths = self._paths(part) if not self.streaming else None
            for i, row in enumerate(meta):
                seen.append((split, i, row))
                where = (paths[i] if paths else None) or f"hf://{self.name}/{split}/{i}"
                raw, speaker = row[cols["label"]], row[cols["speaker"]]
                if raw is None or speaker is None or str(speaker).strip() == "":
                    problems.append({"path": where, "reason": f"row {i} of {split}: no label or speaker"})
                    continue
                label = names[raw] if names and isinstance(raw, int) and 0 <= raw < len(names) else raw
                label = self.label_map.get(str(raw), self.label_map.get(str(label), canonical(label)))
                extras = {"hf_split": split, "hf_row": i}
                given = row[cols["split"]] if cols["split"] else split
                extras["split"] = SPLIT_NAMES.get(str(given).strip().lower(), str(given))
                source = partial(self.read, split, i)
                source.key = key  # the audio store's entry changes when the dataset does
                utterances.append(Utterance(where, label, str(speaker).strip(), extras, source=source))
        if not utterances and not problems:
            raise ValueError(f"data.root={self.source}: the dataset has no rows")
        if self.streaming:
            key = self._stream_print(seen)
            for u in utterances:
                u.source.key = key
        by_split = {}
        for split, _, _ in seen:
            by_split[split] = by_split.get(split, 0) + 1
        log.info("data=hf: %d rows of %s (%s)%s", len(seen), self.source,
                 ", ".join(f"{k}: {n}" for k, n in by_split.items()), ", streamed" if self.streaming else "")
        return utterances, problems

    def _label_names(self, part) -> list[str] | None:
        feature = (part.features or {}).get(self.columns["label"])  # a stream may not know its features
        return list(feature.names) if hasattr(feature, "names") else None

    def _paths(self, part) -> list[str | None]:
        """Each row's audio file where it is a real file on this machine (an audiofolder), else None."""
        table = part.data.column(self.columns["audio"])
        out = []
        for value in table.to_pylist():
            path = (value or {}).get("path") if not (value or {}).get("bytes") else None
            out.append(path if path and Path(path).is_file() else None)
        return out

    def read(self, split: str, i: int):
        """Row ``i``'s audio as a file object for soundfile (its bytes, or its file)."""
        value = self._streamed(split, i) if self.streaming else self.open()[split][i][self.columns["audio"]]
        if value.get("bytes"):
            return io.BytesIO(value["bytes"])
        path = value.get("path")
        if path and Path(path).is_file():
            return path
        raise FileNotFoundError(f"hf://{self.name}/{split}/{i}: the row holds neither audio bytes nor a file here "
                                f"({path!r})")

    def _streamed(self, split: str, i: int) -> dict:
        """Row ``i``'s audio from the stream: the audio pass moves forward to it (rows the store already
        holds are passed over unread); a row behind the pass starts a new one, logged."""
        cursor = self._cursors.get(split)
        if cursor is None or cursor[0] > i:
            if cursor is not None:
                log.info("data=hf: row %d of %s is behind the stream; reading %s again from its start", i, split, split)
            rows = iter(self.open()[split].select_columns([self.columns["audio"]]))
            cursor = self._cursors[split] = [0, rows]
        try:
            while cursor[0] <= i:
                row = next(cursor[1])
                cursor[0] += 1
        except StopIteration:
            raise IndexError(f"hf://{self.name}/{split}/{i}: the stream ended before this row") from None
        return row[self.columns["audio"]] or {}

    def parse(self, path: Path):  # rows are listed, not parsed from names
        raise NotImplementedError
