"""The notebooks under experiments/notebooks run top to bottom (at a tiny training budget)."""

import os
from pathlib import Path

import nbformat
import pytest
from conftest import quick_compile_env
from nbclient import NotebookClient

# A tiny training budget per notebook, in its own unit (gradient steps; env steps for export).
BUDGETS = {"generative_policies": "200", "differentiable_imitation": "10",
           "export_and_deploy": "8192", "finetune_generative": "8192"}
# Notebooks whose test budget compiles far more than it runs, run at optimization level 0 (the
# fine-tuning notebook: 83 to 75-79 CPU s, the imitation one 43 to 35); the others run longer
# there (export's noise and delay sweep 46 to 58-60 CPU s, the four clones 69 to 74), so they
# keep the suite's level 1.
COMPILE_BOUND = {"finetune_generative", "differentiable_imitation"}
NOTEBOOKS = sorted((Path(__file__).parents[1] / "experiments" / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBOJAX_NOTEBOOK_STEPS", BUDGETS.get(path.stem, "10"))
    if path.stem in COMPILE_BOUND:  # the kernel compiles far more than it runs: level 0
        monkeypatch.setenv("XLA_FLAGS", quick_compile_env(dict(os.environ))["XLA_FLAGS"])
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots were drawn


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_hold_their_outputs(path):
    """`make notebooks` stores each notebook's outputs, so a reader sees the plots unrun."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [o for cell in code for o in cell.outputs]
    assert all(cell.execution_count for cell in code), f"run `make notebooks` to store {path.name}"
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no plot"
