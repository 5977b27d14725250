# Recipe: training that survives preemption: save at the next step boundary on SIGTERM,
# SIGUSR1 or SIGINT, save every N minutes, resume by itself from the newest good checkpoint.
# Page: docs/recipes/preemption.md (and .ja.md). Sections are embedded in page order.
# The checkpoint files are written and read by checkpoint_files.py (the functions of
# docs/recipes/safe-checkpoints.md), imported by the first section.

# --8<-- [start:running_example]
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

# The functions of the "Safe checkpoint files" recipe, saved as checkpoint_files.py:
from checkpoint_files import clean_leftovers, load_latest, save_checkpoint

# Synthetic data: 256 samples of 20 features, two classes; 8 batches of 32 per epoch.
g = torch.Generator().manual_seed(0)
features = torch.randn(256, 20, generator=g)
targets = (features[:, :5].sum(dim=1) > 0).long()
BATCH, BATCHES = 32, 8
TOTAL_STEPS = 60


class Run:
    """The model, the optimizer, the scheduler, the data order and the step: everything a
    bitwise resume needs, with state_dict() / load_state_dict() like a module."""

    KEYS = ("model", "optimizer", "scheduler", "step", "order", "data_rng", "torch_rng")

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(64, 2))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, TOTAL_STEPS)
        self.data_rng = torch.Generator().manual_seed(seed)  # shuffles the data, nothing else
        self.order = torch.arange(len(features))  # this epoch's order of the samples
        self.step = 0

    def batches(self):
        """The batches from the current step on, epoch after epoch."""
        while True:
            i = self.step % BATCHES  # the batch's position in its epoch
            if i == 0:  # a new epoch: a new order
                self.order = torch.randperm(len(features), generator=self.data_rng)
            yield self.order[i * BATCH:(i + 1) * BATCH]

    def train_step(self, batch):
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(features[batch]), targets[batch]).backward()  # dropout
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "order": self.order, "data_rng": self.data_rng.get_state(),
                "torch_rng": torch.get_rng_state()}  # dropout's masks

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.order = state["step"], state["order"]
        self.data_rng.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])  # last: building the model drew from it
# --8<-- [end:running_example]


# --8<-- [start:stop_signals]
class StopSignals:
    """Turns SIGTERM, SIGUSR1 (SLURM's warning) and SIGINT (Ctrl-C) into a request to stop.

    The handler only records the signal; the training loop looks at `requested` at each
    step boundary. A second SIGINT raises KeyboardInterrupt at once (a person pressing
    Ctrl-C again); a second SIGTERM or SIGUSR1 is only recorded: the save that may be
    running is what is left to do. Use it as a context manager in the main thread; it puts
    the previous handlers back when it exits.
    """

    def __init__(self, signals=(signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)):
        self.signals = signals
        self.received = []  # signal numbers, in order of arrival
        self._previous = {}

    @property
    def requested(self):
        return bool(self.received)

    def _handler(self, signum, frame):
        self.received.append(signum)  # nothing else: see "Why the handler only sets a flag"
        if signum == signal.SIGINT and self.received.count(signal.SIGINT) > 1:
            raise KeyboardInterrupt

    def __enter__(self):
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, previous in self._previous.items():
            signal.signal(s, previous)
# --8<-- [end:stop_signals]


# --8<-- [start:second_signal]
before = signal.getsignal(signal.SIGTERM)
with StopSignals() as stop:
    signal.raise_signal(signal.SIGUSR1)  # SLURM's warning
    signal.raise_signal(signal.SIGTERM)  # SLURM at the time limit: the second signal
    print("after SIGUSR1 and SIGTERM:", [signal.Signals(s).name for s in stop.received])
    signal.raise_signal(signal.SIGINT)  # Ctrl-C: the first one is a request too
    try:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C again: stop now
    except KeyboardInterrupt:
        print("second Ctrl-C: KeyboardInterrupt")
assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
# --8<-- [end:second_signal]


# --8<-- [start:train]
PREEMPTED = 75  # EX_TEMPFAIL in sysexits.h: "try again later"; 0 means training is complete


def distributed():
    return dist.is_available() and dist.is_initialized()


def agree(*flags):
    """Each flag True on every rank if it is True on any rank (an all_reduce with MAX), so
    that all ranks save and stop at the same step. In one process: the flags as they are."""
    if not distributed():
        return flags
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(flags, dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


def rank_0():
    return not distributed() or dist.get_rank() == 0


def barrier():
    if distributed():
        dist.barrier()


def train(directory, stop, total_steps=TOTAL_STEPS, save_every_s=30 * 60, keep=3,
          clock=time.monotonic, after_step=None, log=print, make_run=Run):
    """Train to `total_steps`, resuming from `directory`; return 0 when done, PREEMPTED
    when `stop` was requested (the checkpoint of the step reached is saved by then).
    On one process or on every rank of a process group (rank 0 writes the files)."""
    if rank_0():
        clean_leftovers(directory)  # temporary files of a save that was killed
    barrier()  # no rank reads the directory while rank 0 cleans it
    state, path = load_latest(directory, log=log, keys=make_run.KEYS)  # skips damaged files
    run = make_run()
    if state is not None:
        try:
            run.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        log(f"resumed from {path} at step {run.step}")
    saved_step, last_save = run.step, clock()

    def save(reason):
        nonlocal saved_step, last_save
        if run.step != saved_step:  # not twice: a signal during a time-based save
            state = run.state_dict()  # on every rank: it may gather from all of them
            error = None
            if rank_0():
                try:
                    save_checkpoint(state, directory, run.step, keep=keep)
                    log(f"step {run.step}: saved ({reason})")
                except Exception as e:  # the other ranks must hear of it, not wait for it
                    error = e
            # Also the barrier: every rank goes on (or exits) once the file is complete.
            (failed,) = agree(error is not None)
            if error is not None:
                raise error
            if failed:
                raise RuntimeError(f"step {run.step}: rank 0 could not save the checkpoint in "
                                   f"{directory}; its own error says why")
        saved_step, last_save = run.step, clock()

    batches = run.batches()
    try:
        while run.step < total_steps:
            # A step boundary: the step before is complete, the next one has not begun.
            due, stopping = agree(clock() - last_save >= save_every_s, stop.requested)
            if due:
                save("time")
                (stopping,) = agree(stop.requested)  # a signal during the save: seen here
            if stopping:
                save(signal.Signals(stop.received[0]).name if stop.requested else "another rank")
                return PREEMPTED
            run.train_step(next(batches))
            if after_step is not None:
                after_step(run)
    finally:
        batches.close()  # ends DataLoader workers now, even when an exception passes
    save("end")
    return 0
# --8<-- [end:train]


# --8<-- [start:main]
def main(directory="checkpoints", **options):
    with StopSignals() as stop:
        code = train(directory, stop, **options)
    sys.exit(code)  # 75: preempted, start again; 0: done
# --8<-- [end:main]


# --8<-- [start:uninterrupted]
reference = Run()
for batch in reference.batches():
    if reference.step == TOTAL_STEPS:
        break
    reference.train_step(batch)


def bitwise_equal(state, run):
    """The model's and the optimizer's tensors in `state` equal those of `run`, bit for bit."""
    ours = run.state_dict()
    return (all(torch.equal(state["model"][k], t) for k, t in ours["model"].items())
            and all(torch.equal(state["optimizer"]["state"][i][k], t)
                    for i, s in ours["optimizer"]["state"].items() for k, t in s.items()))
# --8<-- [end:uninterrupted]


# --8<-- [start:preempted]
def send_sigterm_at_step_23(run):
    """Stands in for the scheduler: the signal arrives while step 23 is being trained."""
    if run.step == 23:
        os.kill(os.getpid(), signal.SIGTERM)


with StopSignals() as stop:
    code = train("checkpoints", stop, after_step=send_sigterm_at_step_23)
print("exit code", code)
print(sorted(os.listdir("checkpoints")))
# --8<-- [end:preempted]


# --8<-- [start:resumed]
with StopSignals() as stop:
    code = train("checkpoints", stop)  # the next start: nothing to pass, it finds its place
print("exit code", code)
state, path = load_latest("checkpoints")
print(path, "bitwise equal to the uninterrupted run:", bitwise_equal(state, reference))
# --8<-- [end:resumed]



# --8<-- [start:time_based]
class FakeClock:
    """A stand-in for time.monotonic in which every training step takes one minute."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def tick(self, run):
        self.now += 60.0


clock = FakeClock()
with StopSignals() as stop:
    train("every-10-minutes", stop, total_steps=35, save_every_s=10 * 60,
          clock=clock, after_step=clock.tick)
print(sorted(os.listdir("every-10-minutes")))
# --8<-- [end:time_based]


# --8<-- [start:fallback]
newest = "checkpoints/ckpt-00000060.pt"
with open(newest, "r+b") as f:  # damage the newest checkpoint: one byte in the middle
    f.seek(os.path.getsize(newest) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))

with StopSignals() as stop:
    code = train("checkpoints", stop)
print("exit code", code)
state, path = load_latest("checkpoints")
print(path, "bitwise equal to the uninterrupted run:", bitwise_equal(state, reference))
# --8<-- [end:fallback]


# --8<-- [start:workers]
import multiprocessing
from multiprocessing import resource_tracker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def ignore_stop_signals(worker_id):
    """worker_init_fn: a DataLoader worker ignores the stop signals; the main process
    decides, at a step boundary, and ends its workers itself."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)  # replaces torch's SIGTERM handler in the worker
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held by start_workers


def start_workers(loader):
    """iter(loader), with the stop signals held while its workers start: a worker starts
    with them blocked (a signal mask is inherited by fork and by exec) and ignores them from
    its worker_init_fn on; this process receives the held signals as soon as they start."""
    context = loader.multiprocessing_context or multiprocessing.get_context()
    if loader.num_workers and context.get_start_method() != "fork":
        resource_tracker.ensure_running()  # its first start unblocks SIGINT and SIGTERM
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
# --8<-- [end:workers]


# --8<-- [start:workers_demo]
from torch.utils.data import DataLoader, Dataset


class WhoLoads(Dataset):
    """64 samples; each one is the pid of the process that loaded it."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return os.getpid()


loader = DataLoader(WhoLoads(), batch_size=8, num_workers=2, worker_init_fn=ignore_stop_signals)
with StopSignals() as stop:
    pids, count = set(), 0
    for batch in start_workers(loader):
        pids.update(batch.tolist())
        count += 1
        if count == 2:  # one batch from each worker: SIGTERM to them and to this process
            for pid in pids | {os.getpid()}:
                os.kill(pid, signal.SIGTERM)
print("workers:", len(pids), "batches:", count, "stop requested:", stop.requested)
# --8<-- [end:workers_demo]


# --8<-- [start:transformer_run]
import itertools

from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

# Synthetic sequences: 256 samples of 8 tokens from a vocabulary of 16, two classes.
tokens = torch.randint(16, (256, 8), generator=torch.Generator().manual_seed(1))
SEQUENCES = TensorDataset(tokens, tokens.sum(dim=1) % 2)


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(16, 16)
        layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class TransformerRun:
    """Run's counterpart on every rank of a process group: DDP, AdamW with a decay and a
    no-decay group, warm-up then cosine, a DistributedSampler, DataLoader workers."""

    KEYS = ("model", "optimizer", "scheduler", "step", "torch_rng")
    TOTAL_STEPS, WARMUP = 30, 5

    def __init__(self, seed=0, num_workers=2):
        self.seed = seed
        torch.manual_seed(seed)  # the same initial weights on every rank
        self.model = DDP(TinyTransformer())
        named = list(self.model.module.named_parameters())
        decay = [p for n, p in named if p.ndim >= 2 and not n.startswith("embed")]
        no_decay = [p for n, p in named if p.ndim < 2 or n.startswith("embed")]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
        self.scheduler = SequentialLR(self.optimizer, [
            LinearLR(self.optimizer, start_factor=0.1, total_iters=self.WARMUP),
            CosineAnnealingLR(self.optimizer, self.TOTAL_STEPS - self.WARMUP)],
            milestones=[self.WARMUP])
        self.sampler = DistributedSampler(SEQUENCES, shuffle=True, seed=seed)
        self.loader = DataLoader(SEQUENCES, batch_size=16, sampler=self.sampler,
                                 num_workers=num_workers, worker_init_fn=ignore_stop_signals,
                                 generator=torch.Generator())
        self.step = 0
        torch.manual_seed(seed + 1 + dist.get_rank())  # dropout: each rank its own masks

    def batches(self):
        """This rank's batches from the current step on, epoch after epoch. The order of an
        epoch comes from the sampler's seed and the epoch number: nothing to save."""
        while True:
            epoch, done = divmod(self.step, len(self.loader))
            self.sampler.set_epoch(epoch)
            self.loader.generator.manual_seed(epoch)  # workers' seeds, not the global RNG's
            for x, y in itertools.islice(start_workers(self.loader), done, None):
                yield x, y

    def train_step(self, batch):
        x, y = batch
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(x), y).backward()  # DDP averages the gradients
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1

    def state_dict(self):
        rngs = [None] * dist.get_world_size()
        dist.all_gather_object(rngs, torch.get_rng_state())  # every rank's dropout generator
        return {"model": self.model.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "torch_rng": rngs}

    def load_state_dict(self, state):
        if len(state["torch_rng"]) != dist.get_world_size():
            raise ValueError(
                f"saved by {len(state['torch_rng'])} ranks, loaded by {dist.get_world_size()}: "
                "the data order and each rank's generator would not continue as before; "
                f"start {len(state['torch_rng'])} ranks, or load the weights only")
        self.model.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        torch.set_rng_state(state["torch_rng"][dist.get_rank()])
# --8<-- [end:transformer_run]


# --8<-- [start:launch_ranks]
import socket


def launch_ranks(target, world_size, *args, **kwargs):
    """Run target(*args, **kwargs) in `world_size` new processes of this machine, with the
    variables torchrun sets and a gloo process group; return their exit codes, like a job
    step."""
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("fork")
    ranks = [context.Process(target=_rank, args=(rank, world_size, port, target, args, kwargs))
             for rank in range(world_size)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join()
    return [p.exitcode for p in ranks]


def _rank(rank, world_size, port, target, args, kwargs):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)  # the processes share this machine's cores
    dist.init_process_group("gloo")  # reads the variables above
    try:
        target(*args, **kwargs)  # main() ends with sys.exit(code): the exit code of this process
    finally:
        dist.destroy_process_group()
# --8<-- [end:launch_ranks]


# --8<-- [start:ranks_demo]
def rank_1_receives_sigterm(run):
    """Only rank 1 and its workers receive SIGTERM, while step 12 is being trained."""
    if run.step == 12 and dist.get_rank() == 1:
        for process in multiprocessing.active_children() + [multiprocessing.current_process()]:
            os.kill(process.pid, signal.SIGTERM)


def launch_and_show(name, directory, **extra):
    codes = launch_ranks(main, 2, directory, make_run=TransformerRun, log=lambda m: None,
                         total_steps=TransformerRun.TOTAL_STEPS, **extra)
    state, path = load_latest(directory)
    print(f"{name}: exit codes {codes}, {path} at step {state['step']}")
    return state


launch_and_show("stopped", "ranks", after_step=rank_1_receives_sigterm)
resumed = launch_and_show("started again", "ranks")
alone = launch_and_show("uninterrupted", "ranks-uninterrupted")
print("bitwise equal:", all(torch.equal(resumed["model"][k], t) for k, t in alone["model"].items())
      and all(torch.equal(resumed["optimizer"]["state"][i][k], t)
              for i, s in alone["optimizer"]["state"].items() for k, t in s.items())
      and all(map(torch.equal, resumed["torch_rng"], alone["torch_rng"])))
# --8<-- [end:ranks_demo]
