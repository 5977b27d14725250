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
import torch
from lightning.pytorch.callbacks import Callback


class TorchRNG(Callback):
    """Lightning's checkpoint holds no random generator state: this callback adds torch's
    (dropout draws from it) and restores it when the resumed run starts."""

    def __init__(self):
        self.saved = None

    def state_dict(self):  # stored under checkpoint["callbacks"]
        return {"torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state_dict):
        self.saved = state_dict["torch_rng"]

    def on_train_start(self, trainer, pl_module):
        if self.saved is not None:
            torch.set_rng_state(self.saved)
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


# --8<-- [start:set_lr]
from lightning.pytorch.callbacks import Callback


class SetLearningRate(Callback):
    """A new learning rate for a resumed run, set after Lightning has restored the optimizer
    and the schedulers (which would overwrite a value given to the constructor)."""

    def __init__(self, lr):
        self.lr = lr

    def on_train_start(self, trainer, pl_module):
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr
        for config in trainer.lr_scheduler_configs:  # schedulers that compute from base_lrs
            config.scheduler.base_lrs = [self.lr] * len(config.scheduler.base_lrs)
# --8<-- [end:set_lr]


# --8<-- [start:set_lr_check]
def lr_after_resume(module, callbacks=()):
    trainer = make_trainer(callbacks)
    trainer.fit(module, loader(), ckpt_path="ckpt/epoch=0-step=5.ckpt")
    return trainer.optimizers[0].param_groups[0]["lr"]


print("lr saved in the checkpoint:", checkpoint["optimizer_states"][0]["param_groups"][0]["lr"])
print("Regressor(lr=1e-3) + ckpt_path:", lr_after_resume(Regressor(lr=1e-3)))
print("SetLearningRate(1e-3) + ckpt_path:", lr_after_resume(Regressor(), [SetLearningRate(1e-3)]))
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
