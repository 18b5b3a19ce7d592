"""Several corpora in one run (``data=multi``): each read by its own adapter, speakers namespaced.

``data.corpora`` maps a corpus name to its folder, or to the adapter's options::

    data.corpora={emodb: ../shared/data/emodb, savee: ../shared/data/savee}
    data.corpora={ravdess: {root: data/ravdess, channel: both}, mine: {adapter: manifest, root: m.csv}}

The name picks the corpus's own ``conf/data`` option (``emodb``, ``ravdess``, ``crema_d``, ``tess``,
``savee``, ``iemocap``, ``manifest``, ``hf``, ``synthetic``, and any option added later: its
``corpus._target_`` and option defaults) unless an ``adapter`` key names another, so one adapter can serve two
copies (``{a: {adapter: synthetic, ...}, b: {adapter: synthetic, ...}}``). Every utterance keeps
its corpus in ``extras["corpus"]`` and its speaker becomes ``<corpus>/<speaker>`` (EmoDB's ``03``
becomes ``emodb/03``), so ids of different corpora never collide and the split guard stays exact.
"""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path

from omegaconf import OmegaConf

from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)
DATA_CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
NOT_CORPORA = ("_common", "multi")


def adapters() -> list[str]:
    """The ``conf/data`` options that are one corpus each."""
    return sorted(p.stem for p in DATA_CONF.glob("*.yaml") if p.stem not in NOT_CORPORA)


def adapter_class(name: str):
    """(the adapter class, its option defaults) from ``conf/data/<name>.yaml``'s ``corpus`` node (options that
    interpolate the run's config, like ``seed: ${seed}``, are left to the adapter's own default)."""
    if name not in adapters():
        raise ValueError(f"data.corpora: no corpus option called {name!r}; name the corpus after one of {adapters()} "
                         f"(conf/data) or give its adapter, e.g. {{mine: {{adapter: manifest, root: <dir>}}}}")
    node = OmegaConf.load(DATA_CONF / f"{name}.yaml").get("corpus")
    target = node.get("_target_") if node is not None else None
    if not target:
        raise ValueError(f"conf/data/{name}.yaml has no corpus._target_, so data=multi cannot read it")
    defaults = {k: OmegaConf.to_container(node, resolve=False)[k] for k in node
                if not str(k).startswith("_") and not OmegaConf.is_interpolation(node, k)}
    module, cls = target.rsplit(".", 1)
    return getattr(import_module(module), cls), defaults


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
            cls, defaults = adapter_class(str(options.pop("adapter", name)))
            try:
                self.parts[name] = cls(**(defaults | options))
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
                u.extras = {**u.extras, "corpus": name}
                u.speaker = f"{name}/{u.speaker}"
            utterances += found
            problems += [{**p, "corpus": name} for p in bad]
            log.info("data.corpora.%s: %d utterances, %d speakers", name, len(found), len({u.speaker for u in found}))
        return utterances, problems
