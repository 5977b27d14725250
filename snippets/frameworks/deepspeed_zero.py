# Recipe: DeepSpeed ZeRO-2 checkpoints: what save_checkpoint writes, resuming, another number of
# processes (universal checkpoints), a consolidated fp32 model and Adam state for plain PyTorch,
# and the Hugging Face Trainer's DeepSpeed resume.
# Page: docs/frameworks/deepspeed.md (and .ja.md). Sections are embedded in page order.
# The worker functions run in processes started by `launch` (as the deepspeed launcher or torchrun
# would start them); the page's own process only reads, converts and compares files.

# --8<-- [start:setup]
import os

os.environ.setdefault("DS_ACCELERATOR", "cpu")  # this page runs on the CPU; on GPUs leave it out

import socket

import deepspeed
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def build_model():
    torch.manual_seed(0)  # the same initial weights in every process
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


def param_groups(model):
    """Two groups with their own weight decay: weights with, biases without."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 0.01},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0}]


def ds_config(world_size, **extra):
    """8 samples per step whatever the number of processes: 4 per micro-batch, and as many
    micro-batches per process (gradient accumulation) as it takes."""
    return {"train_batch_size": 8, "train_micro_batch_size_per_gpu": 4,
            "gradient_accumulation_steps": 8 // (4 * world_size),
            # torch's AdamW: DeepSpeed's own CPU Adam would be compiled at first use
            "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "torch_adam": True}},
            "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 4,
                                                         "warmup_max_lr": 1e-2}},
            "gradient_clipping": 1.0,  # DeepSpeed 0.19.8's default, written out
            "zero_optimization": {"stage": 2}, "steps_per_print": 10**6, **extra}


def micro_batch(step, index):
    """Micro-batch `index` (0 or 1) of a global step: the same data however it is split."""
    g = torch.Generator().manual_seed(1000 * step + index)
    x = torch.randn(4, 4, generator=g)
    return x, x.sum(dim=1, keepdim=True)


def start(**extra):
    model = build_model()
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model),
                                      config=ds_config(dist.get_world_size(), **extra))
    return engine


def train(engine, steps):
    per_process = engine.gradient_accumulation_steps()
    for step in steps:
        for k in range(per_process):
            x, y = micro_batch(step, dist.get_rank() * per_process + k)
            engine.backward(F.mse_loss(engine(x), y))
            engine.step()  # steps the optimizer after the last micro-batch of the step


def save_weights(engine, path):
    if dist.get_rank() == 0:
        torch.save([p.detach().clone() for p in engine.module.parameters()], path)
# --8<-- [end:setup]


# --8<-- [start:launch]
import deepspeed.runtime.zero.muon.muon_optimizer  # noqa: F401  initialize imports it: once here


def launch(worker, world_size, *args):
    """Run worker(*args) in `world_size` processes on this machine, as the launcher would."""
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_run, args=(worker, args, world_size, port), nprocs=world_size,
                       start_method="fork")


def _run(rank, worker, args, world_size, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)  # the processes share this machine's cores
    deepspeed.init_distributed(dist_backend="gloo")
    try:
        worker(*args)
    finally:
        dist.destroy_process_group()
# --8<-- [end:launch]


# --8<-- [start:save]
def save_and_go_on(root):
    engine = start()
    train(engine, range(3))
    engine.save_checkpoint(root)  # every process calls it: each one writes its partition
    save_weights(engine, "step3.pt")
    train(engine, range(3, 6))  # the run that never stopped
    save_weights(engine, "reference.pt")


launch(save_and_go_on, 2, "zero_ckpt")
for folder, _, files in sorted(os.walk("zero_ckpt")):
    print(folder, sorted(files))
with open("zero_ckpt/latest") as f:
    print("latest:", f.read())
# --8<-- [end:save]


# --8<-- [start:inspect]
model_states = torch.load("zero_ckpt/global_step3/mp_rank_00_model_states.pt", weights_only=True)
print("model states:", sorted(model_states))
print("  global_steps =", model_states["global_steps"], " dp_world_size =",
      model_states["dp_world_size"], " lr_scheduler =", model_states["lr_scheduler"])
print("  param_shapes:", [list(group) for group in model_states["param_shapes"]])
for rank in range(2):
    # DeepSpeed's own objects in it (its loss scaler): weights_only=True refuses this file
    optim = torch.load(f"zero_ckpt/global_step3/zero_pp_rank_{rank}_mp_rank_00_optim_states.pt",
                       weights_only=False)["optimizer_state_dict"]
    adam = optim["base_optimizer_state"]
    print(f"rank {rank}:", {i: {k: tuple(v.shape) for k, v in s.items()}
                            for i, s in adam["state"].items()},
          "padding:", optim["group_paddings"])
# --8<-- [end:inspect]


# --8<-- [start:resume]
def resume(root, name, universal=False):
    engine = start(checkpoint={"load_universal": universal})  # built as at the start, then loaded
    engine.load_checkpoint(root)  # the tag in `latest` (or `latest_universal`)
    train(engine, range(3, 6))
    save_weights(engine, name)


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(torch.load(a), torch.load(b)))


launch(resume, 2, "zero_ckpt", "resumed.pt")
print("2 processes again, bitwise equal:", max_diff("resumed.pt", "reference.pt") == 0)
# --8<-- [end:resume]


# --8<-- [start:one_process]
try:
    launch(resume, 1, "zero_ckpt", "one.pt")
except mp.ProcessRaisedException as error:
    print(str(error).strip().split("\n")[-1])
# --8<-- [end:one_process]


# --8<-- [start:universal]
import argparse
import contextlib
import io

from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

arguments = argparse.Namespace(  # python -m deepspeed.checkpoint.ds_to_universal --help
    input_folder="zero_ckpt/global_step3", output_folder="zero_ckpt/global_step3_universal",
    inject_missing_state=True,  # the state Megatron-DeepSpeed adds and other models lack
    num_extract_workers=1, num_merge_workers=1, keep_temp_folder=False, strict=True)
with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
    ds_to_universal(arguments)
with open("zero_ckpt/latest_universal") as f:
    print("latest_universal:", f.read())
print(sorted(os.listdir("zero_ckpt/global_step3_universal/zero")))
print(sorted(os.listdir("zero_ckpt/global_step3_universal/zero/0.weight")))

launch(resume, 1, "zero_ckpt", "universal.pt", True)
print("1 process, 2 micro-batches per step: max |diff| from the 2-process run < 1e-6:",
      max_diff("universal.pt", "reference.pt") < 1e-6)
# --8<-- [end:universal]


# --8<-- [start:fp32]
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

weights = get_fp32_state_dict_from_zero_checkpoint("zero_ckpt")  # the tag in `latest`
model = build_model()
model.load_state_dict(weights)
print("consolidated fp32 weights equal to step 3's:", all(
    torch.equal(p, q) for p, q in zip(model.parameters(), torch.load("step3.pt"))))
# --8<-- [end:fp32]


# --8<-- [start:adam_state]
def load_universal_adam(folder, model, optimizer):
    """Fill a torch.optim.AdamW built from `model` with the universal checkpoint's state: the
    moments and step of each parameter by name, and the hyperparameters of each group."""
    saved = torch.load(f"{folder}/zero/optimizer_state.pt", weights_only=False)["param_groups"]
    if len(saved) != len(optimizer.param_groups):
        raise ValueError(f"{folder} has {len(saved)} parameter groups, the optimizer "
                         f"{len(optimizer.param_groups)}: build it from the same groups")
    names = {p: n for n, p in model.named_parameters()}
    for group, saved_group in zip(optimizer.param_groups, saved):
        for key in ("lr", "betas", "eps", "weight_decay"):
            group[key] = saved_group[key]
        for p in group["params"]:
            path = f"{folder}/zero/{names[p]}"
            if not os.path.isdir(path):
                raise FileNotFoundError(f"{path}: no state for parameter {names[p]}")
            state = {k: torch.load(f"{path}/{k}.pt", weights_only=True)
                     for k in ("exp_avg", "exp_avg_sq", "step")}
            optimizer.state[p] = {"step": state["step"].float().reshape(()),
                                  "exp_avg": state["exp_avg"]["param"].reshape(p.shape),
                                  "exp_avg_sq": state["exp_avg_sq"]["param"].reshape(p.shape)}


from deepspeed.runtime.lr_schedules import WarmupLR

optimizer = torch.optim.AdamW(param_groups(model))
scheduler = WarmupLR(optimizer, warmup_max_lr=1e-2, warmup_num_steps=4)  # it sets lr: build first
load_universal_adam("zero_ckpt/global_step3_universal", model, optimizer)
scheduler.load_state_dict(model_states["lr_scheduler"])
first = optimizer.state[model[0].weight]
print("0.weight:", {k: tuple(v.shape) for k, v in first.items()}, "step =", int(first["step"]))
for step in range(3, 6):  # plain PyTorch: the 8 samples of a step in one batch
    (x0, y0), (x1, y1) = micro_batch(step, 0), micro_batch(step, 1)
    optimizer.zero_grad()
    loss = (F.mse_loss(model(x0), y0) + F.mse_loss(model(x1), y1)) / 2
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as "gradient_clipping": 1.0
    optimizer.step()
    scheduler.step()
torch.save(list(model.parameters()), "plain.pt")
print("plain PyTorch, steps 4-6: max |diff| from the DeepSpeed run < 1e-6:",
      max_diff("plain.pt", "reference.pt") < 1e-6)
# --8<-- [end:adam_state]


# --8<-- [start:trainer]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is built here: nothing is downloaded

from safetensors.torch import load_file
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback


class RandomTokens(Dataset):
    def __init__(self):
        self.ids = torch.randint(0, 32, (64, 8), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make_trainer(output_dir, universal=False):
    """A tiny GPT-2 trained for 6 steps, saved every 3, with DeepSpeed ZeRO-2."""
    set_seed(0)
    config = GPT2Config(vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    zero2 = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
             "gradient_accumulation_steps": "auto",
             "optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": "auto",
                                                       "torch_adam": True}},
             "zero_optimization": {"stage": 2}, "checkpoint": {"load_universal": universal}}
    args = TrainingArguments(output_dir, max_steps=6, save_steps=3, per_device_train_batch_size=8,
                             learning_rate=1e-2, weight_decay=0.01, seed=0, deepspeed=zero2,
                             report_to="none", logging_strategy="no", disable_tqdm=True)
    trainer = Trainer(model=GPT2LMHeadModel(config), args=args, train_dataset=RandomTokens())
    trainer.remove_callback(PrinterCallback)  # it prints the run's timings
    return trainer


def trainer_run(output_dir, resume_from=None, universal=False):
    make_trainer(output_dir, universal).train(resume_from_checkpoint=resume_from)


launch(trainer_run, 1, "hf_run")
print(sorted(os.listdir("hf_run/checkpoint-3")))
print(sorted(os.listdir("hf_run/checkpoint-3/global_step3")))
# --8<-- [end:trainer]


# --8<-- [start:trainer_universal]
with contextlib.redirect_stdout(io.StringIO()):
    ds_to_universal(argparse.Namespace(
        input_folder="hf_run/checkpoint-3/global_step3",
        output_folder="hf_run/checkpoint-3/global_step3_universal", inject_missing_state=True,
        num_extract_workers=1, num_merge_workers=1, keep_temp_folder=False, strict=True))
expected = load_file("hf_run/checkpoint-6/model.safetensors")  # the run that never stopped
launch(trainer_run, 1, "hf_resumed", "hf_run/checkpoint-3", True)
got = load_file("hf_resumed/checkpoint-6/model.safetensors")
print("resumed from the universal checkpoint: max |diff| < 1e-6:",
      max((got[k] - expected[k]).abs().max().item() for k in expected) < 1e-6)
# --8<-- [end:trainer_universal]
