"""Hugging Face datasets as a corpus (``data=hf``): a ``save_to_disk`` folder, an audiofolder, parquet files
or a hub id, with its columns mapped to the project's (``data.columns``) and its labels to canonical names.

The audio column is read undecoded (``Audio(decode=False)``: the file's bytes or its path), since recent
``datasets`` releases decode through torchcodec, which this stack avoids; the project's own soundfile and
soxr path decodes it, with the same checks as every adapter (unreadable, empty, silent, NaN, ...). A row
is named ``hf://<dataset>/<split>/<row>`` in messages and lists (or by its file, where the dataset keeps
paths), and its bytes are read only when it is decoded into the audio store.
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
    """

    name = "hf"

    def __init__(self, root: str, columns: dict | None = None, label_map: dict | None = None,
                 splits: list[str] | None = None, name: str | None = None):
        super().__init__(root)
        self.source = str(root)
        unknown = sorted(set(columns or {}) - set(COLUMNS))
        if unknown:
            raise ValueError(f"data.columns: unknown {unknown}; map any of {list(COLUMNS)} to the dataset's columns")
        self.columns = COLUMNS | {k: v for k, v in (columns or {}).items() if v is not None}
        self.label_map = {str(k): canonical(v) for k, v in (label_map or {}).items()}
        self.splits = list(splits) if splits else None
        self.name = name or Path(self.source.rstrip("/")).name or "hf"
        self._parts: dict = {}

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
            loaded = ds.load_dataset("parquet", data_files=files)
        elif root.is_dir():
            loaded = self._audiofolder(ds, root)
        elif "/" in self.source and not self.source.startswith((".", "/", "~")):
            loaded = ds.load_dataset(self.source)  # a hub id: datasets downloads it where there is network
        else:
            raise FileNotFoundError(f"data.root={self.source}: no such folder or file; give a save_to_disk folder, an "
                                    "audiofolder, parquet files or a hub id (owner/name)")
        parts = dict(loaded) if isinstance(loaded, ds.DatasetDict) else {"train": loaded}
        if self.splits:
            missing = sorted(set(self.splits) - set(parts))
            if missing:
                raise ValueError(f"data.corpus.splits: {missing} not in {self.source}; it has {sorted(parts)}")
            parts = {k: parts[k] for k in self.splits}
        for split, part in parts.items():
            absent = [f"{k}={v}" for k, v in self.columns.items() if v and v not in part.column_names]
            if absent:
                raise ValueError(f"data.columns: {', '.join(absent)}: no such column in {self.source} ({split}); it "
                                 f"has {part.column_names}. Map them, e.g. data.columns.label=emotion")
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

    # -- listing --------------------------------------------------------------------------------
    def scan(self) -> tuple[list[Utterance], list[dict]]:
        utterances, problems = [], []
        cols = self.columns
        key = self.fingerprint()
        for split, part in self.open().items():
            names = self._label_names(part)
            meta = part.select_columns([c for c in (cols["label"], cols["speaker"], cols["split"]) if c])
            paths = self._paths(part)
            for i, row in enumerate(meta):
                where = paths[i] or f"hf://{self.name}/{split}/{i}"
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
        log.info("data=hf: %d rows of %s (%s)", len(utterances) + len(problems), self.source,
                 ", ".join(f"{k}: {len(v)}" for k, v in self.open().items()))
        return utterances, problems

    def _label_names(self, part) -> list[str] | None:
        feature = part.features.get(self.columns["label"])
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
        value = self.open()[split][i][self.columns["audio"]]
        if value.get("bytes"):
            return io.BytesIO(value["bytes"])
        path = value.get("path")
        if path and Path(path).is_file():
            return path
        raise FileNotFoundError(f"hf://{self.name}/{split}/{i}: the row holds neither audio bytes nor a file here "
                                f"({path!r})")

    def parse(self, path: Path):  # rows are listed, not parsed from names
        raise NotImplementedError
