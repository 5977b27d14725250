"""One training process with DataLoader workers, for tests/recipes/test_preemption.py: the page's
`main()` trains TransformerRun on a process group of one rank (gloo), with the workers
started by the start method named on the command line (the test uses it for spawn; the
fork cases run in tests/programs/preemption_restarts.py, forked, which is cheaper). The test signals the whole process
group (this process and its workers) as SLURM or Ctrl-C do.

    preemption_workers.py DIRECTORY START_METHOD MODE

MODE "rule": the page's code as it is; "no-rule": without the worker rule (the workers keep
torch's handlers, started by a plain iter(loader)); "crash": the page's code, and a step
that raises. The line "workers started" is printed on stdout once the first workers are
started (they may still be importing), then the program waits for the test's signal.

The sections are executed in this module's namespace, so that the spawn start method
finds ignore_stop_signals and the data set by name (__main__).
"""

import multiprocessing
import os
import sys

import torch.distributed as dist

from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "recipes" / "preemption.py"
exec(compile(section_source(SNIPPET, "running_example", "stop_signals", "train", "main",
                            "workers", "transformer_run"), str(SNIPPET), "exec"))


def no_rule(worker_id):
    """A worker_init_fn that leaves the workers' signal handlers as torch sets them."""


page_start_workers = start_workers  # noqa: F821 - defined by the sections above
started = False


def observed_start_workers(loader):
    global started
    batches = page_start_workers(loader) if MODE != "no-rule" else iter(loader)
    if not started:
        started = True
        print("workers started", flush=True)
        sys.stdin.readline()  # the test sends its signal, then a line
    return batches


class CrashingRun(TransformerRun):  # noqa: F821
    def train_step(self, batch):
        if self.step == 3:
            raise RuntimeError("a bug in the training step")
        super().train_step(batch)


if __name__ == "__main__":
    DIRECTORY, METHOD, MODE = sys.argv[1:4]
    multiprocessing.set_start_method(METHOD)
    if MODE == "no-rule":
        ignore_stop_signals = no_rule  # noqa: F811
    start_workers = observed_start_workers  # noqa: F811 - train's batches() looks it up here
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["TEST_PORT"], RANK="0",
                      WORLD_SIZE="1")
    dist.init_process_group("gloo")
    make_run = CrashingRun if MODE == "crash" else TransformerRun  # noqa: F821
    main(DIRECTORY, make_run=make_run, total_steps=make_run.TOTAL_STEPS)  # noqa: F821
