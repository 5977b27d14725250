# Recipe: what a Hugging Face Trainer checkpoint holds, resuming it, and reading it without the Trainer.
# Page: docs/frameworks/hugging-face.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is built here: nothing is downloaded

import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback


class RandomTokens(Dataset):
    """64 sequences of 8 tokens from a vocabulary of 32: 8 batches of 8 per epoch."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 32, (64, 8), generator=g)
        self.fetched = []  # the samples the loader read, in order

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        self.fetched.append(i)
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make_trainer(output_dir, **overrides):
    """A tiny GPT-2 built from a config (no download), trained for 12 steps, saved every 5."""
    set_seed(0)
    config = GPT2Config(vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    args = dict(max_steps=12, save_steps=5, per_device_train_batch_size=8, learning_rate=1e-2,
                weight_decay=0.01, lr_scheduler_type="cosine", seed=0, use_cpu=True,
                report_to="none", logging_strategy="no", disable_tqdm=True)
    args.update(overrides)
    trainer = Trainer(model=GPT2LMHeadModel(config), args=TrainingArguments(output_dir, **args),
                      train_dataset=RandomTokens())
    trainer.remove_callback(PrinterCallback)  # it prints the run's timings
    return trainer


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}
# --8<-- [end:setup]


# --8<-- [start:train]
reference = make_trainer("run")
reference.train()
print(sorted(os.listdir("run")))
print(sorted(os.listdir("run/checkpoint-5")))
# --8<-- [end:train]


# --8<-- [start:inspect]
from transformers.trainer_pt_utils import safe_globals

checkpoint = "run/checkpoint-5"
optimizer_state = torch.load(f"{checkpoint}/optimizer.pt", weights_only=True)
for i, group in enumerate(optimizer_state["param_groups"]):
    print(f"group {i}: {len(group['params'])} parameters, weight_decay={group['weight_decay']}, "
          f"fused={group['fused']}")
first = optimizer_state["state"][0]
print("state of parameter 0:", sorted(first), "step =", int(first["step"]))
scheduler_state = torch.load(f"{checkpoint}/scheduler.pt", weights_only=True)
print("scheduler last_epoch =", scheduler_state["last_epoch"])
with open(f"{checkpoint}/trainer_state.json") as f:
    trainer_state = json.load(f)
print("global_step =", trainer_state["global_step"], "epoch =", trainer_state["epoch"])
with safe_globals():  # rng_state.pth holds numpy's legacy state: allow its types
    rng = torch.load(f"{checkpoint}/rng_state.pth", weights_only=True)
print("rng_state.pth:", sorted(rng))
# --8<-- [end:inspect]


# --8<-- [start:resume]
resumed = make_trainer("run")
resumed.train(resume_from_checkpoint="run/checkpoint-5")

expected, got = weights(reference), weights(resumed)
print("bitwise equal:", all(torch.equal(expected[k], got[k]) for k in expected))
# --8<-- [end:resume]


# --8<-- [start:save_only_model]
light = make_trainer("light", save_only_model=True)
light.train()
print(sorted(os.listdir("light/checkpoint-5")))

again = make_trainer("light", save_only_model=True)
again.train(resume_from_checkpoint="light/checkpoint-5")  # no error, no warning


def adam_step(trainer):
    return int(trainer.optimizer.state_dict()["state"][0]["step"])


print(f"Adam's step at the end: {adam_step(again)} (uninterrupted: {adam_step(reference)})")
print(f"scheduler last_epoch: {again.lr_scheduler.last_epoch} "
      f"(uninterrupted: {reference.lr_scheduler.last_epoch})")
expected, got = weights(reference), weights(again)
print("bitwise equal:", all(torch.equal(expected[k], got[k]) for k in expected))
# --8<-- [end:save_only_model]


# --8<-- [start:plain_optimizer]
import torch
from transformers import get_cosine_schedule_with_warmup
from transformers.trainer_pt_utils import get_parameter_names

# The Trainer's rule for which parameters get weight decay (Trainer.get_decay_parameter_names).
NO_DECAY = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def optimizer_from_trainer_checkpoint(model, checkpoint, weight_decay, total_steps,
                                      warmup_steps=0):
    """AdamW and its cosine schedule with the groups the Trainer made, loaded from checkpoint-N/.

    optimizer.pt numbers the parameters 0, 1, ... group by group: first those with weight
    decay, then the others, each in model.named_parameters() order."""
    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], NO_DECAY))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
              {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, fused=True)  # the Trainer's default, adamw_torch_fused
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    optimizer.load_state_dict(torch.load(f"{checkpoint}/optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(f"{checkpoint}/scheduler.pt", weights_only=True))
    return optimizer, scheduler
# --8<-- [end:plain_optimizer]


# --8<-- [start:plain_check]
from safetensors.torch import load_file

model = GPT2LMHeadModel(reference.model.config)
model.load_state_dict(load_file("run/checkpoint-12/model.safetensors"))
optimizer, scheduler = optimizer_from_trainer_checkpoint(model, "run/checkpoint-12",
                                                         weight_decay=0.01, total_steps=12)

# The Trainer's own optimizer at the end of its run, parameter by parameter, by name:
live = reference.optimizer.state
params = dict(reference.model.named_parameters())
same = [all(torch.equal(optimizer.state[p][k], live[params[name]][k])
            for k in ("step", "exp_avg", "exp_avg_sq"))
        for name, p in model.named_parameters()]
print(f"{len(same)} parameters, Adam's state equal to the Trainer's: {all(same)}")
print("scheduler last_epoch:", scheduler.last_epoch)
# --8<-- [end:plain_check]


# --8<-- [start:new_learning_rate]
changed = make_trainer("run", learning_rate=1e-3, save_strategy="no")  # a new rate, on resume
changed.train(resume_from_checkpoint="run/checkpoint-5")
print("base_lrs after the resume:", changed.lr_scheduler.base_lrs)
print("every rate as in the uninterrupted run:",
      changed.lr_scheduler.get_last_lr() == reference.lr_scheduler.get_last_lr())
# --8<-- [end:new_learning_rate]


# --8<-- [start:set_lr_callback]
from transformers import TrainerCallback

# set_hyperparameters of "Safe checkpoint files", saved as checkpoint_files.py:
from checkpoint_files import set_hyperparameters


class SetLearningRate(TrainerCallback):
    """New learning rates for a resumed run, set when training begins: after the Trainer has
    loaded optimizer.pt and scheduler.pt, which overwrite TrainingArguments.learning_rate.

    `lr`: one value per parameter group, or one number when all groups share their rate (the
    Trainer's two groups do). The schedule keeps its shape and position, as if the run had
    used the new rates from the start."""

    def __init__(self, lr):
        self.lr = lr

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        set_hyperparameters(optimizer, lr_scheduler, lr=self.lr)  # one per group, or one for all
# --8<-- [end:set_lr_callback]


# --8<-- [start:set_lr_check]
from transformers import get_cosine_schedule_with_warmup


class RecordLearningRates(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.seen.append([g["lr"] for g in optimizer.param_groups])


record = RecordLearningRates()
with_callback = make_trainer("run", save_strategy="no")
with_callback.add_callback(SetLearningRate(1e-3))
with_callback.add_callback(record)
with_callback.train(resume_from_checkpoint="run/checkpoint-5")

# The rates of a run planned with 1e-3 from the start: the same cosine schedule, in plain torch.
planned = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(2)],
                            lr=1e-3)
schedule = get_cosine_schedule_with_warmup(planned, 0, 12)
rates = []
for _ in range(12):
    rates.append([g["lr"] for g in planned.param_groups])
    planned.step()
    schedule.step()
print("groups:", len(record.seen[0]), "- steps 6 to 12 at the rates of a run planned with 1e-3:",
      all(abs(a - b) < 1e-12 for got, want in zip(record.seen, rates[5:]) for a, b in zip(got, want)))
# --8<-- [end:set_lr_check]


# --8<-- [start:other_batch]
def steps(fetched, per_step, count):  # the samples of each optimizer step, as sets
    return [sorted(fetched[i:i + per_step]) for i in range(0, per_step * count, per_step)]


def report(trainer, changed):
    per_step = trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
    fetched = trainer.train_dataset.fetched
    first = reference.train_dataset.fetched.index(fetched[0])  # where it went on in the epoch
    print(f"{changed or 'as saved'}: {per_step} samples per step, went on at sample {first} "
          f"of the epoch (40 trained), epoch {trainer.state.epoch} at step 12 "
          f"(uninterrupted: {reference.state.epoch}); steps 6-12 as uninterrupted: "
          f"{steps(fetched, per_step, 7) == steps(reference.train_dataset.fetched, 8, 12)[5:]}")


report(resumed, {})  # the resume above
for changed in ({"per_device_train_batch_size": 4},
                {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}):
    trainer = make_trainer("run", save_strategy="no", **changed)  # no checkpoints from it
    trainer.train(resume_from_checkpoint="run/checkpoint-5")
    report(trainer, changed)
# --8<-- [end:other_batch]


# --8<-- [start:other_world_size]
import shutil

# The folder as 4 processes write it: one rng_state_<rank>.pth per process (here copies of
# the one process's file), and nothing else that depends on the number of processes.
shutil.copytree("run/checkpoint-5", "four/checkpoint-5")
for rank in range(4):
    shutil.copy("run/checkpoint-5/rng_state.pth", f"four/checkpoint-5/rng_state_{rank}.pth")
os.remove("four/checkpoint-5/rng_state.pth")
with open("four/checkpoint-5/trainer_state.json") as f:
    saved_state = json.load(f)
print("trainer_state.json: train_batch_size =", saved_state["train_batch_size"],
      "- keys about processes:", [k for k in saved_state if "world" in k or "process" in k])

on_one = make_trainer("four", save_strategy="no")  # 1 process: it looks for rng_state.pth
on_one.train(resume_from_checkpoint="four/checkpoint-5")
expected, got = weights(reference), weights(on_one)
print("bitwise equal:", all(torch.equal(expected[k], got[k]) for k in expected))
# --8<-- [end:other_world_size]


# --8<-- [start:stream_dataset]
from torch.utils.data import IterableDataset


class TokenStream(IterableDataset):
    """The same 64 sequences as an endless stream, from sample `start` on. A stream has no
    length: the Trainer cannot skip in a sampler, it reads the batches and drops them."""

    def __init__(self, start=0):
        self.ids, self.start, self.produced = RandomTokens().ids, start, 0

    def __iter__(self):
        i = self.start
        while True:
            self.produced += 1
            yield {"input_ids": self.ids[i % 64], "labels": self.ids[i % 64]}
            i += 1


def stream_trainer(output_dir, dataset, **overrides):
    trainer = make_trainer(output_dir, **overrides)
    trainer.train_dataset = dataset
    return trainer
# --8<-- [end:stream_dataset]


# --8<-- [start:stream]
streamed = stream_trainer("stream", TokenStream())
streamed.train()
skipping = stream_trainer("stream", TokenStream(), save_strategy="no")
skipping.train(resume_from_checkpoint="stream/checkpoint-5")
print("map-style dataset, samples read by the resumed run:", len(resumed.train_dataset.fetched),
      "(trained: 56, read ahead: 8)")
print("stream, samples read by the resumed run:", skipping.train_dataset.produced,
      "(trained: 56, skipped: 40, read ahead: 8)")
expected, got = weights(streamed), weights(skipping)
print("bitwise equal:", all(torch.equal(expected[k], got[k]) for k in expected))
# --8<-- [end:stream]


# --8<-- [start:stream_position]
import random

import numpy as np
from transformers.trainer_pt_utils import safe_globals


class RestoreRandomState(TrainerCallback):
    """With ignore_data_skip=True the Trainer restores the random generators before its data
    iterator starts, and starting it draws a seed from torch's generator: restore them again
    when the first step begins, where the skipping path restores them."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint

    def on_step_begin(self, args, state, control, **kwargs):
        if self.checkpoint is None:
            return
        name = f"rng_state_{args.process_index}.pth" if args.world_size > 1 else "rng_state.pth"
        with safe_globals():  # numpy's legacy state: allow its types
            rng = torch.load(f"{self.checkpoint}/{name}", weights_only=True)
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["cpu"])
        if torch.cuda.is_available():  # every GPU's state (a list) or the current GPU's
            if isinstance(rng["cuda"], list):
                torch.cuda.set_rng_state_all(rng["cuda"])
            else:
                torch.cuda.set_rng_state(rng["cuda"])
        self.checkpoint = None


checkpoint = "stream/checkpoint-5"
with open(f"{checkpoint}/trainer_state.json") as f:
    global_step = json.load(f)["global_step"]
samples_per_step = 8  # per_device_train_batch_size x gradient_accumulation_steps x processes
positioned = stream_trainer("stream", TokenStream(start=global_step * samples_per_step),
                            ignore_data_skip=True, save_strategy="no")
positioned.add_callback(RestoreRandomState(checkpoint))
positioned.train(resume_from_checkpoint=checkpoint)
print("stream from sample", global_step * samples_per_step, "- samples read:",
      positioned.train_dataset.produced, "(trained: 56, read ahead: 8)")
expected, got = weights(streamed), weights(positioned)
print("bitwise equal:", all(torch.equal(expected[k], got[k]) for k in expected))
# --8<-- [end:stream_position]
