"""Training in Colab and other notebooks (docs/recipes/colab.md): what a page block cannot
show, checked in a real Jupyter kernel with the page's own cells (the sections of
snippets/recipes/colab.py). Mounting Google Drive needs a Colab runtime and is not run here:
the page marks that cell `colab`.
"""

from __future__ import annotations

import os
import time

import pytest

from cookbook_testing.pages import SNIPPETS, assert_quoted, program_env, section_source

nbformat = pytest.importorskip("nbformat", reason="nbformat is in requirements.txt (make test)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in requirements.txt (make test)")
from jupyter_client.manager import start_new_kernel  # noqa: E402  (nbclient's dependency)

PAGE = "recipes/colab.md"
SNIPPET = SNIPPETS / "recipes" / "colab.py"
CELLS = ("drive_import", "checkpoint_dir", "run", "train_in_notebook")
pytestmark = pytest.mark.xdist_group("colab")  # the kernels start one after the other


def _notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def _execute(nb, cwd):
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=program_env())  # checkpoint_files importable, as beside the notebook
    return nb


def _text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@pytest.mark.slow
def test_run_all_goes_past_the_training_cell_and_stops_at_sys_exit_even_with_code_0(tmp_path):
    """One Run all in a fresh kernel: the start-or-resume cell trains and returns, and the
    cell after it runs; the pasted script ending (sys.exit(0)) raises SystemExit, Jupyter
    reports the cell as an error, and the cell after it never runs."""
    cells = [section_source(SNIPPET, name) for name in (*CELLS, "start_or_resume")]
    after = 'print("the cell after it ran")'
    nb = _notebook(*cells, after, section_source(SNIPPET, "sys_exit"), after)
    with pytest.raises(nbclient.exceptions.CellExecutionError) as caught:
        _execute(nb, tmp_path)
    assert _text(nb.cells[-4]) == "no checkpoint: starting at step 0\nstep 60: saved (end)\ndone\n"
    assert _text(nb.cells[-3]) == "the cell after it ran\n"
    assert caught.value.ename == "SystemExit" and caught.value.evalue == "0"
    assert nb.cells[-1].get("execution_count") is None and not nb.cells[-1].outputs
    assert_quoted(PAGE, "SystemExit: 0")


@pytest.mark.slow
def test_the_interrupt_button_saves_and_returns(tmp_path):
    """Jupyter's Interrupt (KernelManager.interrupt_kernel: SIGINT to the kernel, its default
    interrupt mode) during train_in_notebook: the loop saves at the next step boundary and
    returns "interrupted", the cell ends without an error, and running it again resumes."""
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=program_env())
    try:
        setup = "\n\n".join(section_source(SNIPPET, name) for name in CELLS)
        assert kc.execute_interactive(setup, timeout=120)["content"]["status"] == "ok"
        slow = ("import time\n"
                "def slowly(run):\n"
                "    time.sleep(0.05)\n"
                "    if run.step == 3:\n"
                "        open('started', 'w').close()\n"
                "status = train_in_notebook(CHECKPOINT_DIR, total_steps=10_000, after_step=slowly)\n")
        msg_id = kc.execute(slow)
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the training cell did not start"
            time.sleep(0.05)
        km.interrupt_kernel()  # the Interrupt button
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok"  # no KeyboardInterrupt: the cell ended

        seen = []
        check = ("from checkpoint_files import load_latest\n"
                 "state, path = load_latest(CHECKPOINT_DIR)\n"
                 "print(status, state['step'] > 3, state['step'] < 10_000)\n")
        kc.execute_interactive(check, timeout=60, output_hook=lambda m: seen.append(
            m["content"].get("text", "")))
        assert "".join(seen).strip().endswith("interrupted True True")
        assert os.listdir(tmp_path / "checkpoints" / "classifier-run-1")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
