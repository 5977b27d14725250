"""What checkpointing costs: save and load times of a model with Adam's state, measured.

A benchmark, not a test. For MLPs of about 10M, 30M and 100M parameters with Adam's state
it times, in one run and against the disk's own limit (a raw write with fsync and a cold
read of the same number of bytes):

- torch.save / torch.load, and torch.load(mmap=True)
- safetensors for the weights + torch.save for the optimizer state
- torch.distributed.checkpoint save / load (one process, world size 1, gloo)
- torch.distributed.checkpoint.async_save: the time the caller is blocked vs the total

Every save ends with the files fsync'ed; every load starts cold (the files are dropped from
the page cache with posix_fadvise) and ends with the state loaded into a model and an Adam
optimizer. Each figure is the median of several runs; the methods take turns in every run.

    python bench/checkpoint_bench.py                # CPU: JSON + plots + tables for the docs
    python bench/checkpoint_bench.py --gpu --quick  # CUDA: step-on-GPU cost, GPU-to-CPU copies
    python bench/checkpoint_bench.py --render       # rewrite tables and plots from the JSON

Outputs: docs/assets/bench/cpu.json (gpu.json), docs/assets/bench/*.png, and the tables that
docs/concepts/checkpoint-cost.md embeds: outputs/concepts/checkpoint-cost/{cpu,gpu}.md (and
{cpu,gpu}.ja.md, the same tables in Japanese, for the Japanese page).
The command line only: the measurements are in bench_measure.py, tables and plots in
bench_render.py.
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
    ap.add_argument("--gpu", action="store_true", help="the CUDA part: step cost after resume, GPU-to-CPU copies")
    ap.add_argument("--quick", action="store_true", help="with --gpu: fewer sizes and steps (under a minute)")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # --gpu --device cpu: smoke test
    ap.add_argument("--render", action="store_true", help="only rewrite tables and plots from the JSON")
    args = ap.parse_args(argv)

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
