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

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
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
