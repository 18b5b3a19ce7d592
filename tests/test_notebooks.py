"""Every notebook in notebooks/ runs top to bottom on the current code (nbclient, CPU)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # confusion, imbalance, noise, calibration, occlusion, fitting
    text = "".join(o.get("text", "") for o in outputs)
    assert "rare classes: [" in text and "with class weights" in text


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ should hold at least one walk-through"
