"""One command-line path for every command: Hydra composes the command's own config from ``conf/``,
``--help`` lists its options, and a person's mistake ends in one short message and exit status 2.

    python -m ser.inspect | ser.predict | ser.diagnose | ser.export | ser.baselines | ser.results  [key=value ...]

Before anything runs, every ``key=value`` is checked against the composed config: an unknown key
names the keys that exist there and the closest one (``optimizer.lrr`` -> ``optimizer.lr``), a value
of the wrong kind names the default (``trainer.max_epochs=abc``: an integer, default 20), and a
group option that does not exist names those that do. ``HYDRA_FULL_ERROR=1`` shows the traceback
of any error instead.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONF = Path(__file__).resolve().parents[1] / "conf"
_ABSENT = object()
# Options whose value may be a number or a word (Lightning's unions); their kind is not checked.
EITHER_KIND = {"trainer.precision", "trainer.devices", "trainer.deterministic", "trainer.strategy", "trainer.accelerator",
               "trainer.max_time", "trainer.val_check_interval", "trainer.limit_train_batches", "trainer.limit_val_batches",
               "trainer.limit_test_batches", "trainer.num_nodes", "trainer.gradient_clip_val"}


class UserError(Exception):
    """A mistake in the command line, the config or the input: reported in one message, exit status 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the input was wrong", reported without a traceback. ValueError (``AudioError``
    among them) and FileNotFoundError are what this project raises for bad values, files and folders, always with
    the file or key named; a bug that raises one still shows its traceback with HYDRA_FULL_ERROR=1."""
    return (UserError, HydraException, OmegaConfBaseException, ValueError, FileNotFoundError,
            NotADirectoryError, PermissionError, ImportError)


def config_errors() -> tuple[type[BaseException], ...]:
    """The errors of :func:`check_overrides` and composition alone (no torch import: fast to report)."""
    return UserError, HydraException, OmegaConfBaseException


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """``conf/<config_name>.yaml`` composed with ``overrides``, after :func:`check_overrides`."""
    check_overrides(config_name, overrides)
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def group_options(group: str) -> list[str]:
    """The options of a config group (``model`` -> ``cnn, cnn_lstm, lstm, pool``); [] if no such group."""
    folder = CONF / group
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_")) if folder.is_dir() else []


def check_overrides(config_name: str, overrides: list[str]) -> None:
    """Raise :class:`UserError` for an unknown group option, an unknown key or a value of the wrong
    kind, naming what is valid. ``+key=`` / ``++key=`` / ``~key`` and ``hydra.*`` are Hydra's to judge."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise UserError(f"cannot read the command line: {err}") from None
    groups, keys = [], []
    for o in parsed:
        if o.key_or_group.startswith("hydra") or o.type.name != "CHANGE":
            continue
        options = group_options(o.key_or_group)
        if options:
            choices = _choices(o)
            for choice in choices or []:
                if choice is not None and str(choice) not in options:
                    raise UserError(f"{o.key_or_group}={choice}: no such option; choose from {', '.join(options)}"
                                    + _closest(str(choice), options, prefix=f"{o.key_or_group}="))
            groups.append((o.key_or_group, [str(c) for c in choices] if choices else None))
        else:
            keys.append(o)
    if not keys:
        return
    # The config as these group choices make it; a swept group is checked option by option.
    fixed = [f"{g}={c[0]}" for g, c in groups if c]
    configs = [_compose(config_name, fixed)]
    for g, choices in groups:
        for choice in (choices or [])[1:]:
            configs.append(_compose(config_name, [f for f in fixed if not f.startswith(f"{g}=")] + [f"{g}={choice}"]))
    for o in keys:
        found = [v for v in (_select(cfg, o.key_or_group) for cfg in configs) if v is not _ABSENT]
        if not found:
            raise UserError(_unknown_key(configs[0], o.key_or_group))
        for value in _choices(o) or []:
            problem = _kind_problem(o.key_or_group, found[0], value)
            if problem:
                raise UserError(f"{o.input_line}: {problem}")


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config_name, overrides=overrides)


def _choices(o) -> list | None:
    """The values an override sets (each of a choice or range sweep); None for an interval sweep."""
    if not o.is_sweep_override():
        return [o.value()]
    try:
        return list(o.sweep_iterator())
    except Exception:  # interval(...) and tagged Optuna ranges: not enumerable, left to the sweeper
        return None


def _select(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig) and part in node.keys():  # `in node` is False for a required (???) key
            node = node._get_node(part)
            node = node if isinstance(node, DictConfig | ListConfig) else node._value()
        elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def _unknown_key(cfg: DictConfig, key: str) -> str:
    parts = key.split(".")
    parent, depth = cfg, 0
    for part in parts[:-1]:
        if isinstance(parent, DictConfig) and part in parent.keys():
            parent, depth = parent._get_node(part), depth + 1
        else:
            break
    where = ".".join(parts[:depth])
    missing = parts[depth]
    if not isinstance(parent, DictConfig):
        return f"unknown option '{key}': '{where}' is a value, not a group of options"
    valid = [k for k in parent.keys() if not str(k).startswith("_")]
    prefix = f"{where}." if where else ""
    shown = ", ".join(f"{prefix}{k}" for k in valid[:25]) + (", ..." if len(valid) > 25 else "")
    message = f"unknown option '{key}'. {'Options of ' + where if where else 'Top-level options'}: {shown}"
    elsewhere = _elsewhere(cfg, missing)
    message += _closest(missing, valid, prefix=prefix) or elsewhere or "."
    if where and "_target_" in parent and not elsewhere:
        message += f" A new argument of {parent['_target_']} is added with '+{key}=...'."
    return message


def _elsewhere(cfg: DictConfig, name: str) -> str:
    """A hint when an option of this name lives under another group (``data.batch_size`` is ``loader.batch_size``)."""
    found = [f"{key}.{name}" for key in cfg.keys() if isinstance(cfg.get(key), DictConfig) and name in cfg[key]]
    return f". '{name}' is {' or '.join(repr(f) for f in found)}." if found else ""


def _closest(word: str, options: list[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.5)
    return f". Did you mean '{prefix}{match[0]}'?" if match else ""


def _kind_problem(key: str, default, value) -> str | None:
    """Why ``value`` cannot replace ``default`` (None when it can): the kinds must agree."""
    if default is None or value is None or default == "???" or (isinstance(value, str) and "${" in value):
        return None
    if key in EITHER_KIND:  # Lightning takes a number or a word for these (precision=bf16-mixed, devices=auto)
        return None
    if isinstance(default, str) and "${" in default:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"expected true or false (default {str(default).lower()})"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected an integer (default {default})"
    if isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number (default {default})"
    if isinstance(default, ListConfig):
        shown = OmegaConf.to_container(default)
        return None if isinstance(value, list) else f"expected a list like [a,b] (default {shown})"
    if isinstance(default, DictConfig):
        return None if isinstance(value, dict) else "expected a mapping like {key: value}; or set its keys one by one"
    return None


def help_text(prog: str, doc: str, cfg: DictConfig | None, groups: list[str] = ()) -> str:
    """The command's usage line and description, its config groups and options with their defaults."""
    lines = [doc.strip(), ""]
    if groups:
        lines.append("Config groups (group=option):")
        lines += [f"  {g}: {', '.join(group_options(g))}" for g in groups]
        lines.append("")
    if cfg is not None:
        lines.append("Options and their defaults (key=value; ??? = required):")
        lines += [f"  {key}={value}" for key, value in flat_options(cfg)]
    lines.append(f"\nErrors end with one line and exit status 2; HYDRA_FULL_ERROR=1 {prog} ... shows the traceback.")
    return "\n".join(lines)


def flat_options(cfg: DictConfig, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, default as typed on a command line), leaves only; ``_target_`` and the like left out."""
    rows = []
    for key in cfg.keys():
        if str(key).startswith("_"):
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig):
            rows += flat_options(node, f"{prefix}{key}.")
        else:
            value = OmegaConf.to_container(node, resolve=False) if isinstance(node, ListConfig) else node._value()
            text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            rows.append((f"{prefix}{key}", text.replace("'", "")))
    return rows


def run_command(prog: str, doc: str, config_name: str, body: Callable[[DictConfig], object],
                argv: list[str] | None = None, help_cfg: Callable[[DictConfig], DictConfig] | None = None,
                groups: list[str] = ()):
    """Compose ``conf/<config_name>.yaml`` with ``argv`` and run ``body(cfg)``; ``--help`` prints the
    options. A user error prints ``<prog>: error: <message>`` and returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        cfg = _compose(config_name, [])
        print(help_text(prog, doc, help_cfg(cfg) if help_cfg else cfg, groups))
        return 0
    try:
        cfg = compose_config(config_name, argv)
        result = body(cfg)
    except user_errors() as err:
        return refuse(prog, err)
    return 0 if result is None else result  # an exit status, or what the command returns to a Python caller


def check_early(prog: str, doc: str, config_name: str, argv: list[str],
                help_cfg: Callable[[DictConfig], DictConfig] | None = None, groups: list[str] = ()) -> None:
    """For a command run as a script, before its heavy imports (torch and Lightning take seconds): answer
    ``--help`` and refuse a mistaken command line (unknown key, wrong kind of value, missing option) at once,
    exiting with status 0 or 2; return when the command line composes."""
    if wants_help(argv):
        sys.exit(run_command(prog, doc, config_name, lambda cfg: None, argv, help_cfg, groups))
    try:
        compose_config(config_name, argv)
    except config_errors() as err:
        sys.exit(refuse(prog, err))


def wants_help(argv: list[str]) -> bool:
    return any(a in ("-h", "--help", "help") for a in argv)


def refuse(prog: str, err: BaseException) -> int:
    """``<prog>: error: <message>`` on stderr and status 2 (``HYDRA_FULL_ERROR=1``: the traceback instead)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    print(f"{prog}: error: {short(err)}\n(`{prog} --help` lists the options)", file=sys.stderr)
    return 2


def short(err: BaseException) -> str:
    """One readable message: Hydra's composition errors carry their cause on the last lines."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, HydraException | OmegaConfBaseException):
        text = " ".join(line.strip() for line in text.splitlines() if line.strip() and "full_key" not in line
                        and "object_type" not in line and "reference_type" not in line)
    return text
