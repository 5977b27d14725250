"""The number readers care about: how much training throughput a checkpoint every N steps
costs. The benchmark's model trains for a fixed number of steps without checkpoints and with
one every N steps, for a synchronous save and for the saves that do not stop training; the
difference, per checkpoint, is the training time that one checkpoint costs, and scaled to one
checkpoint a minute, the share of throughput lost.

What a run's checkpoints cost is the time of its steps above that run's own median step
(most steps are far from a checkpoint): the speed of the machine drifts between runs by more
than a checkpoint costs. The runs without checkpoints, before and after the others, give the
step time that the table shows. The last
checkpoint of a run is followed by N steps more, so that a background write has the same
room to finish as it has in a long run; the clock stops at the last step, and that write is
then waited for outside it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench_common import async_process_save, background_checkpointer, build, process_stager, remove

TRAIN = ("save_checkpoint", "dcp_async_process", "background")


def train_run(model, optimizer, x, steps: int, every: int, save=None, sync=lambda: None,
              step_times=None) -> tuple[float, int]:
    """Seconds for `steps` training steps, calling save(step) every `every` steps (not after
    the last N); returns (seconds, checkpoints). `step_times` collects each step's seconds."""
    checkpoints = 0
    sync()
    t0 = last = time.perf_counter()
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()
        if save is not None and step % every == 0 and step + every <= steps:
            save(step)
            checkpoints += 1
        if step_times is not None:
            sync()
            now = time.perf_counter()
            step_times.append(now - last)
            last = now
    sync()
    return time.perf_counter() - t0, checkpoints


def throughput(params_m: float, steps: int, every: int, batch: int, workdir: Path, log,
               device: str = "cpu") -> dict:
    import torch
    from torch.distributed.checkpoint.state_dict import get_state_dict

    import checkpoint_files

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model, _, width = build(params_m)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    x = torch.randn(batch, width, device=device)
    train_run(model, optimizer, x, 3, every, sync=sync)  # warm-up: Adam's state, allocator
    Background = background_checkpointer()

    def state():
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    base_steps = []  # every step of the runs without checkpoints

    def baseline():
        return train_run(model, optimizer, x, steps, every, sync=sync, step_times=base_steps)[0]

    out = {"device": device, "steps": steps, "every": every, "batch": batch,
           "baseline_s": [baseline()], "methods": {}}

    def record(key, fn, close=lambda: None):
        times = []
        try:
            seconds, n = train_run(model, optimizer, x, steps, every, save=fn, sync=sync,
                                   step_times=times)
        finally:
            close()
        # What the checkpoints cost: the time of each step above the run's own median step.
        # Most steps are far from a checkpoint, so the median is the run's speed without
        # them; runs are compared with themselves because the speed drifts between runs.
        lost = sum(times) - len(times) * statistics.median(times)
        out["methods"][key] = {"run_s": seconds, "checkpoints": n, "lost_s": lost}
        log(f"  training, a checkpoint every {every} steps, {key}: {seconds:.2f}s ({n} checkpoints)")

    # synchronous: the site's save_checkpoint (sha256 file, `latest`, rotation)
    d = workdir / "train-sync"
    record("save_checkpoint", lambda step: checkpoint_files.save_checkpoint(
        state(), d, step, keep=2, log=lambda *a: None))
    remove(d)

    # dcp.async_save in a writer process, one stager kept between saves, one save in flight
    stager = process_stager(pinned=cuda)
    pending = []
    d = workdir / "train-dcp"

    def dcp_save(step):
        if pending:
            pending.pop().result()  # one save in flight: wait for the previous one
        msd, osd = get_state_dict(model, optimizer)
        pending.append(async_process_save({"model": msd, "optimizer": osd}, d / f"step-{step}", stager))

    def dcp_close():
        while pending:
            pending.pop().result()
        stager.close()

    async_process_save({"w": torch.zeros(1)}, workdir / "warm-up", stager).result()  # the writer process
    record("dcp_async_process", dcp_save, dcp_close)
    remove(d)
    remove(workdir / "warm-up")

    # the site's background save
    if Background is not None:
        d = workdir / "train-background"
        saver = Background(d, keep=2, checksum=True)
        saver.save(state(), 0)  # starts the writer process and allocates the staging memory
        saver.wait()

        def bg_close():
            saver.wait()
            saver.close()

        record("background", lambda step: saver.save(state(), step), bg_close)
        remove(d)

    out["baseline_s"].append(baseline())
    out["step_s"] = statistics.median(base_steps)
    for m in out["methods"].values():
        m["lost_per_checkpoint_s"] = m["lost_s"] / m["checkpoints"] if m["checkpoints"] else None
        m["lost_share"] = m["lost_s"] / m["run_s"]  # at one checkpoint every `every` steps
        m["lost_share_per_minute"] = (m["lost_per_checkpoint_s"] or 0.0) / 60
    del model, optimizer
    return out
