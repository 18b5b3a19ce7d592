"""Several corpora in one run (``data=multi``): each read by its own adapter, speakers namespaced.

``data.corpora`` maps a corpus name to its folder, or to the adapter's options::

    data.corpora={emodb: ../shared/data/emodb, savee: ../shared/data/savee}
    data.corpora={ravdess: {root: data/ravdess, channel: both}, mine: {adapter: manifest, root: m.csv}}

The name picks the adapter (``emodb``, ``ravdess``, ``crema_d``, ``tess``, ``savee``, ``iemocap``,
``manifest``, ``synthetic``) unless an ``adapter`` key says otherwise, so one adapter can serve two
copies (``{a: {adapter: synthetic, ...}, b: {adapter: synthetic, ...}}``). Every utterance keeps
its corpus in ``extras["corpus"]`` and its speaker becomes ``<corpus>/<speaker>`` (EmoDB's ``03``
becomes ``emodb/03``), so ids of different corpora never collide and the split guard stays exact.
"""

from __future__ import annotations

import logging
from importlib import import_module

from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)

ADAPTERS = {
    "emodb": "ser.corpora.emodb.EmoDB",
    "ravdess": "ser.corpora.ravdess.RAVDESS",
    "crema_d": "ser.corpora.crema_d.CremaD",
    "tess": "ser.corpora.tess.TESS",
    "savee": "ser.corpora.savee.SAVEE",
    "iemocap": "ser.corpora.iemocap.IEMOCAP",
    "manifest": "ser.corpora.manifest.Manifest",
    "synthetic": "ser.corpora.synthetic.SyntheticCorpus",
}


def adapter_class(name: str):
    if name not in ADAPTERS:
        raise ValueError(f"data.corpora: no adapter called {name!r}; name the corpus after one of {sorted(ADAPTERS)} "
                         f"or give its adapter, e.g. {{mine: {{adapter: manifest, root: <dir>}}}}")
    module, cls = ADAPTERS[name].rsplit(".", 1)
    return getattr(import_module(module), cls)


def corpus_of(utterance: Utterance, default: str = "") -> str:
    """The corpus an utterance came from (``default`` for a single-corpus run)."""
    return str(utterance.extras.get("corpus", default))


class MultiCorpus:
    """Args:
    corpora: name -> folder, or name -> ``{root: <folder>, adapter: <name>, <adapter option>: ...}``.
    root: unused (``data=multi`` has one folder per corpus); kept so every adapter is built alike.
    """

    name = "multi"

    def __init__(self, root=None, corpora: dict | None = None):
        if not corpora:
            raise ValueError("data=multi needs data.corpora, e.g. 'data.corpora={emodb: <dir>, savee: <dir>}'")
        self.parts = {}
        for name, spec in corpora.items():
            name = str(name)
            if "/" in name:
                raise ValueError(f"data.corpora: corpus name {name!r} may not contain '/' (it prefixes speaker ids)")
            options = dict(spec) if isinstance(spec, dict) else {"root": spec}
            if options.get("root") in (None, ""):
                raise ValueError(f"data.corpora.{name}: give its folder, e.g. data.corpora.{name}=<dir> or {{root: <dir>}}")
            cls = adapter_class(str(options.pop("adapter", name)))
            try:
                self.parts[name] = cls(**options)
            except TypeError as err:
                raise ValueError(f"data.corpora.{name}: {err}") from err
        self.root = ", ".join(f"{n}={p.root}" for n, p in self.parts.items())

    @property
    def names(self) -> list[str]:
        return list(self.parts)

    def generate(self) -> None:
        """Prepare corpora that are generated (the synthetic one); a no-op for folders on disk."""
        for part in self.parts.values():
            if hasattr(part, "generate"):
                part.scan()

    def scan(self) -> tuple[list[Utterance], list[dict]]:
        """Every corpus's utterances, speakers namespaced and corpus recorded; problems name their corpus."""
        utterances, problems = [], []
        for name, part in self.parts.items():
            found, bad = part.scan()
            for u in found:
                u.extras = {**u.extras, "corpus": name, "corpus_speaker": u.speaker}
                u.speaker = f"{name}/{u.speaker}"
            utterances += found
            problems += [{**p, "corpus": name} for p in bad]
            log.info("data.corpora.%s: %d utterances, %d speakers", name, len(found), len({u.speaker for u in found}))
        return utterances, problems
