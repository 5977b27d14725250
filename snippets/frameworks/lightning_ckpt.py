# Recipe: what a Lightning .ckpt holds, resuming with ckpt_path, and what load_from_checkpoint leaves out.
# Page: docs/frameworks/lightning.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import warnings

import lightning.pytorch as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset
from torchdata.stateful_dataloader import StatefulDataLoader

g = torch.Generator().manual_seed(0)
features = torch.randn(64, 4, generator=g)
# The third tensor is each sample's index: it tells which samples a run trained on.
dataset = TensorDataset(features, features.sum(dim=1, keepdim=True), torch.arange(64))


class Regressor(L.LightningModule):
    def __init__(self, lr=1e-2):
        super().__init__()
        self.save_hyperparameters()  # stored in the checkpoint as "hyper_parameters"
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
        self.seen = []

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        self.seen += index.tolist()
        return F.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def loader(stateful=True):
    """8 batches per epoch; a StatefulDataLoader (torchdata) can resume in the middle of one."""
    kind = StatefulDataLoader if stateful else DataLoader
    return kind(dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))


def make_trainer(callbacks=(), max_steps=8):
    return L.Trainer(max_steps=max_steps, accelerator="cpu", callbacks=list(callbacks),
                     enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
                     logger=False, enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=".")


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
# --8<-- [end:setup]


# --8<-- [start:rng_callback]
import warnings

import torch
from lightning.pytorch.callbacks import Callback


class TorchRNG(Callback):
    """Lightning's checkpoint holds no random generator state: this callback adds torch's CPU
    generator and, where CUDA is used, the generator of every GPU (dropout on a GPU draws
    from those), and restores them when the resumed run starts."""

    def __init__(self):
        self.saved = None

    def state_dict(self):  # stored under checkpoint["callbacks"]
        state = {"torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()  # one per visible GPU
        return state

    def load_state_dict(self, state_dict):
        self.saved = state_dict

    def on_train_start(self, trainer, pl_module):
        if self.saved is None:
            return
        torch.set_rng_state(self.saved["torch_rng"])
        cuda = self.saved.get("cuda_rng", [])
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if len(cuda) == gpus:
            if cuda:
                torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"TorchRNG: the checkpoint holds the generators of {len(cuda)} GPUs, "
                          f"this process sees {gpus}: their dropout will not continue as in "
                          "the saved run (the resume is not bitwise)")
# --8<-- [end:rng_callback]


# --8<-- [start:train]
L.seed_everything(0, verbose=False)
reference = Regressor()
every_5_steps = ModelCheckpoint(dirpath="ckpt", every_n_train_steps=5, save_top_k=-1)
make_trainer([every_5_steps, TorchRNG()]).fit(reference, loader())

checkpoint = torch.load("ckpt/epoch=0-step=5.ckpt", weights_only=True)
print(sorted(checkpoint))
adam = checkpoint["optimizer_states"][0]
print("optimizer_states[0]:", sorted(adam), "- state of parameter 0:", sorted(adam["state"][0]),
      "step =", int(adam["state"][0]["step"]))
print("lr_schedulers[0]: last_epoch =", checkpoint["lr_schedulers"][0]["last_epoch"])
progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
print("global_step =", checkpoint["global_step"],
      "- batches processed in the epoch =", progress["processed"])
print("callbacks:", sorted(name.split("{")[0] for name in checkpoint["callbacks"]))
print("hyper_parameters:", dict(checkpoint["hyper_parameters"]))
# --8<-- [end:train]


# --8<-- [start:resume]
L.seed_everything(0, verbose=False)
resumed = Regressor()
make_trainer([TorchRNG()]).fit(resumed, loader(), ckpt_path="ckpt/epoch=0-step=5.ckpt")
print("samples of steps 6 to 8 as uninterrupted:", resumed.seen == reference.seen[40:])
print("bitwise equal:", same_weights(resumed, reference))
# --8<-- [end:resume]


# --8<-- [start:load_from_checkpoint]
restored = Regressor.load_from_checkpoint("ckpt/epoch=0-step=5.ckpt")
weights = checkpoint["state_dict"]
restored_weights = restored.state_dict()
print("weights restored:", all(torch.equal(v, restored_weights[k]) for k, v in weights.items()))
print("hparams:", dict(restored.hparams))

trainer = make_trainer(max_steps=3)  # "continue" from the weights alone
trainer.fit(restored, loader())
print("after 3 more steps: global_step =", trainer.global_step, "- Adam's step =",
      int(trainer.optimizers[0].state_dict()["state"][0]["step"]))
# --8<-- [end:load_from_checkpoint]


# --8<-- [start:plain_load]
import torch

# check_same_parameters of "Safe checkpoint files", saved as checkpoint_files.py:
from checkpoint_files import check_same_parameters


def load_lightning_checkpoint(path, model, optimizer, scheduler=None, prefix="net."):
    """Load a Lightning .ckpt into a plain model, optimizer and scheduler: torch only.

    `prefix` is the LightningModule's attribute that holds `model` plus a dot ("net." for
    self.net). `optimizer` must have the groups configure_optimizers made, with the
    parameters in the same order: the file numbers them by position, not by name.
    Returns the checkpoint, for its other entries (global_step, epoch, callbacks)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    weights = checkpoint["state_dict"]
    outside = [k for k in weights if not k.startswith(prefix)]
    if outside:
        raise ValueError(f"{path}: {len(outside)} of the {len(weights)} weights are not under "
                         f"{prefix!r} ({', '.join(outside[:3])}): pass the attribute that holds "
                         "the model as prefix=")
    model.load_state_dict({k[len(prefix):]: v for k, v in weights.items()})
    optimizers, schedulers = checkpoint["optimizer_states"], checkpoint["lr_schedulers"]
    if len(optimizers) != 1 or len(schedulers) != (scheduler is not None):
        raise ValueError(f"{path}: {len(optimizers)} optimizers and {len(schedulers)} "
                         f"schedulers saved, 1 and {int(scheduler is not None)} given: load "
                         "each entry of optimizer_states and lr_schedulers into its own")
    check_same_parameters(optimizer, optimizers[0])  # groups, counts, shapes, by position
    optimizer.load_state_dict(optimizers[0])
    if scheduler is not None:
        scheduler.load_state_dict(schedulers[0])
    return checkpoint
# --8<-- [end:plain_load]


# --8<-- [start:plain_build]
import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)  # as configure_optimizers does
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
saved = load_lightning_checkpoint("ckpt/epoch=0-step=5.ckpt", net, optimizer, scheduler)
print("global_step:", saved["global_step"], "- Adam's step:",
      int(optimizer.state_dict()["state"][0]["step"]), "- scheduler last_epoch:",
      scheduler.last_epoch)
# --8<-- [end:plain_build]


# --8<-- [start:plain_continue]
import torch.nn.functional as F

# Steps 6 to 8 in a plain loop, on the samples the uninterrupted run took, with dropout
# drawing from the generator state that the TorchRNG callback saved:
torch.set_rng_state(saved["callbacks"]["TorchRNG"]["torch_rng"])
net.train()
for index in torch.tensor(reference.seen[40:]).split(8):
    x, y, _ = dataset[index]
    optimizer.zero_grad()
    F.mse_loss(net(x), y).backward()
    optimizer.step()
    scheduler.step()
print("bitwise equal to Lightning's uninterrupted run:",
      all(torch.equal(a, b) for a, b in zip(net.parameters(), reference.net.parameters())))
# --8<-- [end:plain_continue]


# --8<-- [start:set_lr]
from lightning.pytorch.callbacks import Callback

# set_hyperparameters of "Safe checkpoint files", saved as checkpoint_files.py:
from checkpoint_files import set_hyperparameters


class SetLearningRate(Callback):
    """New learning rates for a resumed run, set after Lightning has restored the optimizer
    and its scheduler (which overwrite what configure_optimizers gave them).

    `lr`: one value per parameter group, or one number when all groups share their rate.
    The schedule keeps its shape and its position, as if the run had used the new rates from
    the start (set_hyperparameters: OneCycleLR's max_lr, ReduceLROnPlateau's rate from now
    on, the base of the others; it refuses the schedulers it cannot change right)."""

    def __init__(self, lr):
        self.lr = lr

    def on_train_start(self, trainer, pl_module):
        if len(trainer.optimizers) != 1 or len(trainer.lr_scheduler_configs) > 1:
            raise ValueError(f"SetLearningRate: {len(trainer.optimizers)} optimizers and "
                             f"{len(trainer.lr_scheduler_configs)} schedulers; it handles one "
                             "of each: call set_hyperparameters for each pair yourself")
        optimizer = trainer.optimizers[0]
        scheduler = trainer.lr_scheduler_configs[0].scheduler if trainer.lr_scheduler_configs else None
        set_hyperparameters(optimizer, scheduler, lr=self.lr)  # one per group, or one for all
# --8<-- [end:set_lr]


# --8<-- [start:set_lr_check]
def lr_after_resume(module, callbacks=()):
    trainer = make_trainer(callbacks)
    trainer.fit(module, loader(), ckpt_path="ckpt/epoch=0-step=5.ckpt")
    return trainer.optimizers[0].param_groups[0]["lr"]


def lr_planned_with(lr):  # StepLR(step_size=5, gamma=0.5) after 8 steps, from the start
    return lr * 0.5 ** (8 // 5)


print("lr saved in the checkpoint:", checkpoint["optimizer_states"][0]["param_groups"][0]["lr"])
print(f"Regressor(lr=1e-3) + ckpt_path: {lr_after_resume(Regressor(lr=1e-3)):.2g}")
got = lr_after_resume(Regressor(), [SetLearningRate(1e-3)])
print(f"SetLearningRate(1e-3) + ckpt_path: {got:.2g} "
      f"(a run planned with 1e-3: {lr_planned_with(1e-3):.2g})")
assert abs(got - lr_planned_with(1e-3)) < 1e-12
# --8<-- [end:set_lr_check]


# --8<-- [start:mid_epoch]
L.seed_everything(0, verbose=False)
first = Regressor()  # the same run with a plain DataLoader, stopped after 5 steps
make_trainer([ModelCheckpoint(dirpath="plain", every_n_train_steps=5), TorchRNG()],
             max_steps=5).fit(first, loader(stateful=False))

L.seed_everything(0, verbose=False)
plain = Regressor()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    make_trainer([TorchRNG()]).fit(plain, loader(stateful=False),
                                   ckpt_path="plain/epoch=0-step=5.ckpt")
print(*{str(w.message) for w in caught if "not resumable" in str(w.message)})
epoch = first.seen + plain.seen  # the 5 batches before the checkpoint, then the rest
print("samples in the epoch:", len(epoch), "- distinct:", len(set(epoch)))
print("bitwise equal:", same_weights(plain, reference))
# --8<-- [end:mid_epoch]
