"""How the code is laid out (STYLE.md 13): layers point down, no import of ``ser`` hidden in a function, short
functions, and the two interfaces the design holds small (the data module's parts, ``diagnose``'s options)."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from ser.data.datamodule import SERDataModule
from ser.diagnose.core import diagnose
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "ser").rglob("*.py"))
MAX_LINES = 60  # a function longer than a screen is two functions


def _functions():
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.relative_to(ROOT), node


def test_no_function_is_longer_than_a_screen():
    long = [f"{path}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)" for path, f in _functions()
            if f.end_lineno - f.lineno + 1 > MAX_LINES]
    assert not long, long


def test_no_ser_import_hides_inside_a_function():
    """An import inside a function to dodge a cycle is still an import; optional heavy dependencies (opensmile,
    resemblyzer, ...) may load there, a module of ser may not."""
    hidden = []
    for path, f in _functions():
        for node in ast.walk(f):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            hidden += [f"{path}:{node.lineno} {n}" for n in names if n == "ser" or n.startswith("ser.")]
    assert not hidden, hidden


def test_the_layers_contract_holds():
    command = Path(sys.executable).parent / "lint-imports"  # the venv's, beside this python
    if not command.is_file():
        pytest.skip("import-linter is not installed (the dev extra)")
    done = subprocess.run([str(command)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 kept, 0 broken" in done.stdout


def test_the_data_module_and_the_diagnosis_take_few_arguments():
    assert len(inspect.signature(SERDataModule.__init__).parameters) - 1 <= 10  # without self
    assert len(inspect.signature(diagnose).parameters) <= 3
