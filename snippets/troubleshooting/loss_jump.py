# Recipe: the loss jumps after a resume although the optimizer state was loaded: a checklist
# of what to compare between the saved run and the resumed one, each item with its check.
# Page: docs/troubleshooting/loss-jump.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:running_example]
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

# A small regression problem: 8 batches of 32 per epoch; float16 autocast with a GradScaler.
g = torch.Generator().manual_seed(0)
inputs = torch.randn(256, 16, generator=g)
targets = torch.tanh(inputs @ torch.randn(16, 4, generator=g)) * 10
BATCH, BATCHES, TOTAL_STEPS, WARMUP = 32, 8, 240, 5


class Net(nn.Module):
    """Two hidden layers of the same shape; `b_first` defines them in the other order (the
    forward pass is the same, the order of model.parameters() is not)."""

    def __init__(self, b_first=False):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU())
        if b_first:
            self.b = nn.Linear(64, 64)
            self.a = nn.Linear(64, 64)
        else:
            self.a = nn.Linear(64, 64)
            self.b = nn.Linear(64, 64)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        x = self.inp(x)
        x = self.drop(torch.relu(self.a(x)))
        return self.out(torch.relu(self.b(x)))


def schedule(step):
    """Linear warm-up over WARMUP steps, then cosine to 0 at TOTAL_STEPS."""
    if step < WARMUP:
        return (step + 1) / WARMUP
    return 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / (TOTAL_STEPS - WARMUP)))


class Run:
    """Everything the training loop uses, built in the same order at the start and on resume."""

    def __init__(self, seed=0, b_first=False):
        torch.manual_seed(seed)
        self.model = Net(b_first)
        # named_parameters(): the optimizer's state dict then holds the parameters' names
        self.optimizer = torch.optim.Adam(self.model.named_parameters(), lr=3e-2)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler("cpu")
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(0.98),
                                 use_buffers=True)
        self.data_rng = torch.Generator().manual_seed(seed)  # shuffles the data
        self.order = torch.arange(len(inputs))
        self.step = 0

    def next_batch(self):
        i = self.step % BATCHES  # the batch's position in its epoch
        if i == 0:
            self.order = torch.randperm(len(inputs), generator=self.data_rng)
        return self.order[i * BATCH:(i + 1) * BATCH]

    def train_step(self):
        batch = self.next_batch()
        self.optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.mse_loss(self.model(inputs[batch]), targets[batch])
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)  # skipped when a gradient is inf or NaN
        self.scaler.update()
        self.scheduler.step()
        self.ema.update_parameters(self.model)
        self.step += 1
        return loss.item()

    def full_loss(self):
        """The loss on the whole training set, in eval mode: no dropout, no batch noise."""
        training = self.model.training
        self.model.eval()
        with torch.no_grad():
            loss = F.mse_loss(self.model(inputs), targets).item()
        self.model.train(training)
        return loss

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict(), "step": self.step, "order": self.order,
                "data_rng": self.data_rng.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.ema.load_state_dict(state["ema"])
        self.step, self.order = state["step"], state["order"]
        self.data_rng.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])  # last: building the run drew from it


def train(run, until):
    """Train to step `until`; return the loss on the whole training set after each step."""
    losses = []
    while run.step < until:
        run.train_step()
        losses.append(run.full_loss())
    return losses
# --8<-- [end:running_example]


# --8<-- [start:reference]
SAVE_AT, AFTER = 180, 10  # the checkpoint's step (mid-epoch); the steps compared after it

reference = Run()
train(reference, SAVE_AT)
torch.save(reference.state_dict(), "checkpoint.pt")
expected = train(reference, SAVE_AT + AFTER)  # the run that never stopped


def resume(path="checkpoint.pt", **run_options):
    run = Run(**run_options)  # built as at the start, then loaded
    run.load_state_dict(torch.load(path, weights_only=True))
    return run


print("resumed equals uninterrupted:", train(resume(), SAVE_AT + AFTER) == expected)
checkpoint = torch.load("checkpoint.pt", weights_only=True)  # what the checks compare with
# --8<-- [end:reference]


# --8<-- [start:check_lr]
def check_lr(checkpoint, optimizer, scheduler):
    """1. The learning rate of every group, and the scheduler's step count."""
    found = []
    for i, (saved, group) in enumerate(zip(checkpoint["optimizer"]["param_groups"],
                                           optimizer.param_groups)):
        if group["lr"] != saved["lr"]:
            found.append(f"group {i}: lr {group['lr']:.4g}, saved {saved['lr']:.4g}")
    saved_step = checkpoint["scheduler"]["last_epoch"]
    if scheduler.last_epoch != saved_step:
        found.append(f"scheduler at step {scheduler.last_epoch}, saved at {saved_step}")
    return found
# --8<-- [end:check_lr]


# --8<-- [start:mistake_lr]
def scheduler_built_after_loading():
    run = resume()
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, schedule)  # not loaded
    return run, checkpoint


run, saved = scheduler_built_after_loading()
print(check_lr(saved, run.optimizer, run.scheduler))
# --8<-- [end:mistake_lr]


# --8<-- [start:check_steps]
def check_steps(checkpoint, optimizer):
    """2. The optimizer's step count of every parameter (Adam's bias correction uses it)."""
    saved = checkpoint["optimizer"]["state"]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    found = []
    for index, p in enumerate(params):
        want = saved.get(index, {}).get("step")
        have = optimizer.state.get(p, {}).get("step")
        if want is not None and (have is None or int(have) != int(want)):
            found.append(f"parameter {index}: step {None if have is None else int(have)}, "
                         f"saved {int(want)}")
    return found[:1] + ([f"... and {len(found) - 1} more"] if len(found) > 1 else [])
# --8<-- [end:check_steps]


# --8<-- [start:mistake_steps]
def optimizer_built_again():
    """The setup code that builds the optimizer and the scheduler runs again after loading;
    the scheduler is loaded again, the optimizer is not."""
    run = resume()
    run.optimizer = torch.optim.Adam(run.model.named_parameters(), lr=3e-2)
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, schedule)
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    return run, checkpoint


run, saved = optimizer_built_again()
print(check_steps(saved, run.optimizer))
# --8<-- [end:mistake_steps]


# --8<-- [start:check_order]
def check_order(checkpoint, model, optimizer):
    """3. The parameters in the optimizer, by name, against the names saved with its state
    (the optimizer saves them when it was built with model.named_parameters())."""
    names = {id(p): name for name, p in model.named_parameters()}
    found = []
    for i, (saved, group) in enumerate(zip(checkpoint["optimizer"]["param_groups"],
                                           optimizer.param_groups)):
        if "param_names" not in saved:
            return ["no names saved: build the optimizer with model.named_parameters()"]
        have = [names.get(id(p), "?") for p in group["params"]]  # not group["param_names"]:
        for position, (a, b) in enumerate(zip(have, saved["param_names"])):  # load overwrites it
            if a != b:
                found.append(f"group {i}, position {position}: {a}, saved {b}")
    return found
# --8<-- [end:check_order]


# --8<-- [start:mistake_order]
def layers_defined_in_another_order():
    """The model's code now defines `b` before `a`: the model loads by name, the optimizer's
    state by position."""
    return resume(b_first=True), checkpoint


run, saved = layers_defined_in_another_order()
print(run.optimizer.param_groups[0]["param_names"][4:8], "(the file's names, after loading)")
print(check_order(saved, run.model, run.optimizer))
# --8<-- [end:mistake_order]


# --8<-- [start:check_scaler]
def check_scaler(checkpoint, scaler):
    """4. The GradScaler's scale and growth tracker."""
    if "scaler" not in checkpoint:
        return [f"no GradScaler state saved; the scaler starts again at {scaler.get_scale():g}"]
    saved, have = checkpoint["scaler"], scaler.state_dict()
    return [f"{key} {have[key]:g}, saved {saved[key]:g}"
            for key in ("scale", "_growth_tracker") if have.get(key) != saved.get(key)]
# --8<-- [end:check_scaler]


# --8<-- [start:mistake_scaler]
def scaler_built_again():
    run = resume()
    run.scaler = torch.amp.GradScaler("cpu")  # built again after loading: its state is lost
    return run, checkpoint


run, saved = scaler_built_again()
print(check_scaler(saved, run.scaler))
# --8<-- [end:mistake_scaler]


# --8<-- [start:check_ema]
def check_ema(checkpoint, model):
    """5. The model holds the saved training weights, and they are not the EMA's."""
    found = [f"{key} differs from the checkpoint's model"
             for key, value in model.state_dict().items()
             if key in checkpoint["model"] and not torch.equal(value, checkpoint["model"][key])]
    ema = {key.removeprefix("module."): value
           for key, value in checkpoint.get("ema", {}).items() if key.startswith("module.")}
    if ema and all(torch.equal(value, ema[key]) for key, value in checkpoint["model"].items()
                   if key in ema and value.is_floating_point()):
        found.append("the checkpoint's model weights are the EMA's")
    return found
# --8<-- [end:check_ema]


# --8<-- [start:mistake_ema]
def ema_saved_as_model():
    """The EMA's weights saved as "model" (meant for evaluation, used as the checkpoint)."""
    ema = {key.removeprefix("module."): value
           for key, value in checkpoint["ema"].items() if key.startswith("module.")}
    torch.save({**checkpoint, "model": ema}, "checkpoint-ema.pt")
    return resume("checkpoint-ema.pt"), torch.load("checkpoint-ema.pt", weights_only=True)


run, saved = ema_saved_as_model()
print(check_ema(saved, run.model))
# --8<-- [end:mistake_ema]


# --8<-- [start:check_data]
def check_data(checkpoint, order, step, data_rng):
    """6. The data order of the epoch, the position in it, and the generator that shuffles
    the next epochs."""
    found = []
    if step != checkpoint["step"]:
        found.append(f"step {step}, saved {checkpoint['step']}")
    if not torch.equal(order, checkpoint["order"]):
        found.append("another order of the samples in this epoch")
    if not torch.equal(data_rng.get_state(), checkpoint["data_rng"]):
        found.append("the shuffling generator is not in its saved state")
    return found
# --8<-- [end:check_data]


# --8<-- [start:mistake_data]
def data_order_not_restored():
    """The step is restored, the order and the shuffling generator are not."""
    run = resume()
    run.order, run.data_rng = torch.arange(len(inputs)), torch.Generator().manual_seed(0)
    return run, checkpoint


run, saved = data_order_not_restored()
print(check_data(saved, run.order, run.step, run.data_rng))
# --8<-- [end:mistake_data]


# --8<-- [start:check_rng]
def check_rng(checkpoint):
    """7. torch's global generator (dropout's masks), just before the first step."""
    if torch.equal(torch.get_rng_state(), checkpoint["torch_rng"]):
        return []
    return ["torch's generator is not in its saved state: dropout draws other masks"]
# --8<-- [end:check_rng]


# --8<-- [start:mistake_rng]
def module_built_after_restoring():
    run = resume()
    nn.Linear(64, 4)  # a module built after the generator was restored draws from it
    return run, checkpoint


run, saved = module_built_after_restoring()
print(check_rng(saved))
# --8<-- [end:mistake_rng]


# --8<-- [start:check_mode]
def check_mode(model):
    """8. Every module in training mode (dropout on, BatchNorm on batch statistics)."""
    names = [name or "the model" for name, module in model.named_modules() if not module.training]
    return [f"{len(names)} modules in eval mode: {', '.join(names[:3])}, ..."] if names else []
# --8<-- [end:check_mode]


# --8<-- [start:mistake_mode]
def left_in_eval_mode():
    run = resume()
    run.model.eval()  # a validation pass right after loading, and no model.train() after it
    return run, checkpoint


run, saved = left_in_eval_mode()
print(check_mode(run.model))
# --8<-- [end:mistake_mode]


# --8<-- [start:check_dtype]
def check_dtype(checkpoint, model, optimizer):
    """9. The dtype of every saved tensor against the model's and the optimizer's now."""
    found = {}
    for key, value in model.state_dict().items():
        saved = checkpoint["model"].get(key)
        if saved is not None and saved.dtype != value.dtype:
            found.setdefault(f"model: saved {saved.dtype}, now {value.dtype}", []).append(key)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, p in enumerate(params):
        for key, saved in checkpoint["optimizer"]["state"].get(index, {}).items():
            value = optimizer.state.get(p, {}).get(key)
            if value is not None and saved.dtype != value.dtype:
                found.setdefault(f"optimizer {key}: saved {saved.dtype}, now {value.dtype}",
                                 []).append(index)
    return [f"{what} ({len(keys)} tensors)" for what, keys in found.items()]
# --8<-- [end:check_dtype]


# --8<-- [start:mistake_dtype]
def saved_in_bfloat16():
    """The weights saved in bfloat16 to halve the file, loaded into the float32 model."""
    model = {key: value.to(torch.bfloat16) if value.is_floating_point() else value
             for key, value in checkpoint["model"].items()}
    torch.save({**checkpoint, "model": model}, "checkpoint-bf16.pt")
    return resume("checkpoint-bf16.pt"), torch.load("checkpoint-bf16.pt", weights_only=True)


run, saved = saved_in_bfloat16()
print(check_dtype(saved, run.model, run.optimizer))
# --8<-- [end:mistake_dtype]


# --8<-- [start:diagnose]
CHECKLIST = ["learning rate and scheduler step", "optimizer step counts",
             "parameter order by name", "GradScaler scale", "EMA weights saved as the model",
             "data order and position", "dropout RNG", "train() mode", "dtype"]


def diagnose(checkpoint, run):
    """The nine checks in order, right after loading and before the first step: what each
    finds (an empty list: nothing)."""
    return dict(zip(CHECKLIST, [
        check_lr(checkpoint, run.optimizer, run.scheduler),
        check_steps(checkpoint, run.optimizer),
        check_order(checkpoint, run.model, run.optimizer),
        check_scaler(checkpoint, run.scaler),
        check_ema(checkpoint, run.model),
        check_data(checkpoint, run.order, run.step, run.data_rng),
        check_rng(checkpoint),  # first: nothing may draw from the generator before it
        check_mode(run.model),
        check_dtype(checkpoint, run.model, run.optimizer)]))


run = resume()
print("a right resume:", {item: found for item, found in diagnose(checkpoint, run).items()
                          if found} or "nothing found")
# --8<-- [end:diagnose]


# --8<-- [start:all_mistakes]
MISTAKES = [scheduler_built_after_loading, optimizer_built_again,
            layers_defined_in_another_order, scaler_built_again, ema_saved_as_model,
            data_order_not_restored, module_built_after_restoring, left_in_eval_mode,
            saved_in_bfloat16]


def loss_after_resume(losses):
    """The loss over the 10 steps after the resume, against the uninterrupted run's."""
    if losses == expected:
        return "equal"
    worst = max(a / b for a, b in zip(losses, expected))
    return "jumps: 1.3x or more" if worst >= 1.3 else "differs, less than 1.3x"


print(f"{'mistake':32} {'items found':12} loss after the resume")
for mistake in MISTAKES:
    run, saved = mistake()
    found = [str(i + 1) for i, f in enumerate(diagnose(saved, run).values()) if f]
    print(f"{mistake.__name__:32} {','.join(found):12} "
          f"{loss_after_resume(train(run, SAVE_AT + AFTER))}")
# --8<-- [end:all_mistakes]
