"""What checkpointing costs: save and load times of a model with Adam's state, and the training
throughput a checkpoint every N steps costs, measured in one run, as ratios.

A benchmark, not a test. For MLPs of about 10M, 30M and 100M parameters with Adam's state it
prints, for each size, side by side:

- blocked time of every save method ÷ a synchronous `torch.save` (+ fsync): torch.save, the
  site's save_checkpoint, safetensors + torch.save, dcp.save, dcp.async_save (thread; and
  process, with a stager kept between saves), the site's BackgroundCheckpointer;
- total time of every save ÷ a raw write + fsync of the same number of bytes;
- load time ÷ a raw cold read of the same bytes: torch.load, torch.load(mmap=True),
  safetensors, dcp.load, the site's load_checkpoint, and load_checkpoint(fast=True);
- the training throughput lost at one checkpoint every N steps (`--every`), and scaled to
  one checkpoint a minute, for save_checkpoint, dcp.async_save (process) and the background
  save.

Every save ends with the files fsync'ed; every load starts cold (the files are dropped from
the page cache with posix_fadvise) and ends with the state loaded into a model and an Adam
optimizer. Each save/load figure is the median of several runs; the methods take turns in
every run.

    python bench/checkpoint_bench.py                # CPU: JSON + plots + tables for the docs
    python bench/checkpoint_bench.py --gpu --quick  # CUDA: step cost, copies, staging, throughput
    python bench/checkpoint_bench.py --render       # rewrite tables and plots from the JSON

Outputs: docs/assets/bench/cpu.json (gpu.json), docs/assets/bench/*.png (and .ja.png), and the
tables that docs/concepts/checkpoint-cost.md embeds: outputs/concepts/checkpoint-cost/{cpu,gpu}.md
(and {cpu,gpu}.ja.md, the same tables in Japanese, for the Japanese page).
The command line only: the measurements are in bench_measure.py (and the bench_*.py files it
runs), tables and plots in bench_render.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench_measure import ASSETS, CPU_JSON, GPU_JSON, run_cpu, run_gpu
from bench_render import TABLES, render_all, render_cpu, render_gpu, write_gpu_tables


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ASSETS, help="JSON and plots (default: docs/assets/bench)")
    ap.add_argument("--tables", type=Path, default=TABLES, help="generated Markdown tables")
    ap.add_argument("--sizes", type=lambda s: [float(x) for x in s.split(",")], default=[10, 30, 100],
                    help="model sizes in millions of parameters (default: 10,30,100)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement; medians are reported")
    ap.add_argument("--dir", default=None, help="where the checkpoint files are written (default: $TMPDIR)")
    ap.add_argument("--train-steps", type=int, default=None,
                    help="training steps per throughput run, 0 to skip it (default: 60; 600 with --gpu)")
    ap.add_argument("--every", type=int, default=None,
                    help="a checkpoint every N training steps (default: 20; 200 with --gpu)")
    ap.add_argument("--batch", type=int, default=None, help="training batch size (default: 16; 256 with --gpu)")
    ap.add_argument("--gpu", action="store_true", help="the CUDA part: step cost after resume, GPU-to-CPU copies, staging, throughput")
    ap.add_argument("--quick", action="store_true", help="with --gpu: fewer sizes and steps (under a minute)")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # --gpu --device cpu: smoke test
    ap.add_argument("--render", action="store_true", help="only rewrite tables and plots from the JSON")
    args = ap.parse_args(argv)
    for name, cpu, gpu in (("train_steps", 60, 600), ("every", 20, 200), ("batch", 16, 256)):
        if getattr(args, name) is None:
            setattr(args, name, gpu if args.gpu else cpu)

    if args.render:
        for p in render_all(args.out, args.tables):
            print(f"wrote {p}")
        return 0

    if args.gpu:
        import torch
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print("checkpoint_bench --gpu needs CUDA: torch.cuda.is_available() is False here. "
                  "Nothing measured, nothing written.")
            return 0
        result = run_gpu(args, args.device)
        if args.device.startswith("cuda"):
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / GPU_JSON).write_text(json.dumps(result, indent=1) + "\n")
            paths = [args.out / GPU_JSON, *write_gpu_tables(result, args.tables)]
        else:
            paths = []
        print(render_gpu(result))
        for p in paths:
            print(f"wrote {p}")
        return 0

    result = run_cpu(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / CPU_JSON).write_text(json.dumps(result, indent=1) + "\n")
    paths = [args.out / CPU_JSON] + render_all(args.out, args.tables)
    print(render_cpu(result))
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
