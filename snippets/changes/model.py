# Resume after the model changed: layers added, removed, renamed or reordered, a new head,
# parameter groups that change with the training stage. Page: docs/changes/model.md (and
# .ja.md); sections in page order. The page also shows the functions load_by_name,
# check_same_parameters and load_weights from checkpoint_files.py between these sections;
# run as a script, this file imports them (the import is not on the page). Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
import contextlib

from checkpoint_files import check_same_parameters, load_by_name, load_weights


@contextlib.contextmanager
def expect_error(exc_type, match):
    """Run a section that the page shows raising `exc_type`. Not on the page."""
    try:
        yield
    except exc_type as error:
        assert match in str(error), error
    else:
        raise AssertionError(f"expected {exc_type.__name__}: {match}")


# --8<-- [start:setup]
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # tiny tensors: threads only cost time


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


torch.manual_seed(0)
inputs, targets = torch.randn(32, 8), torch.randint(0, 4, (32,))


def train(model, optimizer, steps=3):
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()


old = Net()
old_optimizer = torch.optim.Adam(old.named_parameters(), lr=1e-3)
train(old, old_optimizer)
torch.save({"model": old.state_dict(), "optimizer": old_optimizer.state_dict()}, "checkpoint.pt")
checkpoint = torch.load("checkpoint.pt", weights_only=True)
# --8<-- [end:setup]

with expect_error(ValueError, "doesn't match the size"):
    # --8<-- [start:added]
    class Deeper(Net):
        """One more hidden layer, fc3, after fc2."""

        def __init__(self):
            super().__init__()
            self.fc3 = nn.Linear(8, 8)

        def forward(self, x):
            hidden = F.relu(self.fc2(F.relu(self.fc1(x))))
            return self.head(F.relu(self.fc3(hidden)))


    model = Deeper()
    optimizer = torch.optim.Adam(model.named_parameters())
    optimizer.load_state_dict(checkpoint["optimizer"])
    # --8<-- [end:added]

# --8<-- [start:renamed]
class Renamed(Net):
    """The same layers in the same order, under new names."""

    def __init__(self):
        nn.Module.__init__(self)
        self.encoder = nn.Linear(8, 8)
        self.hidden = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(F.relu(self.hidden(F.relu(self.encoder(x)))))


model = Renamed()
optimizer = torch.optim.Adam(model.named_parameters())
optimizer.load_state_dict(checkpoint["optimizer"])  # by position: each state where it belongs
print(optimizer.param_groups[0]["param_names"][:2])  # but the saved names replace the new ones
# --8<-- [end:renamed]

with expect_error(RuntimeError, "Missing key(s) in state_dict"):
    # --8<-- [start:renamed_model]
    model.load_state_dict(checkpoint["model"])
    # --8<-- [end:renamed_model]

# --8<-- [start:reordered]
class Reordered(Net):
    """The same layers, but fc2 is created before fc1: parameters() yields another order."""

    def __init__(self):
        nn.Module.__init__(self)
        self.fc2 = nn.Linear(8, 8)
        self.fc1 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)


model = Reordered()
model.load_state_dict(checkpoint["model"])  # by name: right
optimizer = torch.optim.Adam(model.named_parameters())
optimizer.load_state_dict(checkpoint["optimizer"])  # by position: no error, no warning

swapped = torch.equal(optimizer.state[model.fc1.weight]["exp_avg"],
                      old_optimizer.state[old.fc2.weight]["exp_avg"])
print("fc1.weight holds the exp_avg of fc2.weight:", swapped)
# --8<-- [end:reordered]

with expect_error(RuntimeError, "must match the size"):
    # --8<-- [start:reordered_shapes]
    class HeadFirst(Net):
        """The head is created first: its (4, 8) weight takes position 0, fc1.weight's (8, 8)."""

        def __init__(self):
            nn.Module.__init__(self)
            self.head = nn.Linear(8, 4)
            self.fc1 = nn.Linear(8, 8)
            self.fc2 = nn.Linear(8, 8)


    model = HeadFirst()
    model.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.Adam(model.named_parameters())
    optimizer.load_state_dict(checkpoint["optimizer"])  # no error here either
    train(model, optimizer)  # the first step fails
    # --8<-- [end:reordered_shapes]

# --8<-- [start:by_name]
class Shallow(Net):
    """fc2 removed."""

    def __init__(self):
        nn.Module.__init__(self)
        self.fc1 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(F.relu(self.fc1(x)))


for model in (Deeper(), Reordered(), nn.DataParallel(Shallow())):  # DataParallel: "module."
    optimizer = torch.optim.Adam(model.named_parameters())
    new, dropped = load_by_name(optimizer, checkpoint["optimizer"])
    print(f"{type(model).__name__}: new {new}, dropped {dropped}")

print("fc1.weight holds its own exp_avg:",
      torch.equal(optimizer.state[model.module.fc1.weight]["exp_avg"],
                  old_optimizer.state[old.fc1.weight]["exp_avg"]))
# --8<-- [end:by_name]

# --8<-- [start:by_name_groups]
def decay_groups(model, decay_first=True):
    """Weights with weight decay, biases without, at a tenth of the learning rate."""
    named = list(model.named_parameters())
    decay = {"params": [(n, p) for n, p in named if n.endswith("weight")],
             "lr": 1e-3, "weight_decay": 0.1}
    no_decay = {"params": [(n, p) for n, p in named if n.endswith("bias")],
                "lr": 1e-4, "weight_decay": 0.0}
    return [decay, no_decay] if decay_first else [no_decay, decay]


saved_model = Net()
saved_optimizer = torch.optim.AdamW(decay_groups(saved_model))
train(saved_model, saved_optimizer)
saved = saved_optimizer.state_dict()

model = Net()  # the same groups, built in the other order
optimizer = torch.optim.AdamW(decay_groups(model, decay_first=False))
print(load_by_name(optimizer, saved))
for group in optimizer.param_groups:
    print(group["param_names"][:2], "lr", group["lr"], "weight_decay", group["weight_decay"])
# --8<-- [end:by_name_groups]

with expect_error(ValueError, "holds parameters of the checkpoint's groups"):
    # --8<-- [start:by_name_groups_changed]
    model = Net()
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW([{"params": named[:4]}, {"params": named[4:]}])  # by layer
    load_by_name(optimizer, saved)
    # --8<-- [end:by_name_groups_changed]

with expect_error(ValueError, "head.weight: saved exp_avg has shape"):
    # --8<-- [start:new_head]
    class FineTune(Net):
        """The same network with a new head: 7 classes instead of 4."""

        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 7)


    model = FineTune()
    optimizer = torch.optim.Adam(model.named_parameters())
    load_by_name(optimizer, checkpoint["optimizer"])
    # --8<-- [end:new_head]

# --8<-- [start:new_head_skip]
print(load_by_name(optimizer, checkpoint["optimizer"], skip=("head.",)))
# --8<-- [end:new_head_skip]

# --8<-- [start:rename_fix]
def renamed(checkpoint, renames):
    """A copy of the checkpoint with the names that start with an old prefix moved to the
    new one, renames={"fc1.": "encoder."}: the model's keys and the optimizer's param_names."""
    def new_name(name):
        for old_prefix, new_prefix in renames.items():
            if name.startswith(old_prefix):
                return new_prefix + name[len(old_prefix):]
        return name

    groups = [{**group, "param_names": [new_name(n) for n in group["param_names"]]}
              for group in checkpoint["optimizer"]["param_groups"]]
    return {**checkpoint,
            "model": {new_name(k): v for k, v in checkpoint["model"].items()},
            "optimizer": {**checkpoint["optimizer"], "param_groups": groups}}
# --8<-- [end:rename_fix]

# --8<-- [start:rename_use]
moved = renamed(checkpoint, {"fc1.": "encoder.", "fc2.": "hidden."})
model = Renamed()
model.load_state_dict(moved["model"])
optimizer = torch.optim.Adam(model.named_parameters())
print(load_by_name(optimizer, moved["optimizer"]))  # nothing new, nothing dropped
print(optimizer.param_groups[0]["param_names"][:2])
# --8<-- [end:rename_use]


with expect_error(ValueError, "the parameters are in another order"):
    # --8<-- [start:check_reordered]
    model = Reordered()
    optimizer = torch.optim.Adam(model.named_parameters())
    check_same_parameters(optimizer, checkpoint["optimizer"])  # before load_state_dict
    # --8<-- [end:check_reordered]

# --8<-- [start:strict_false]
model = Deeper()
result = model.load_state_dict(checkpoint["model"], strict=False)
print("missing:", result.missing_keys)
print("unexpected:", result.unexpected_keys)
# --8<-- [end:strict_false]

# --8<-- [start:strict_false_nothing]
wrapped = nn.DataParallel(old)  # a checkpoint saved from the wrapper: "module.fc1.weight", ...
torch.save({"model": wrapped.state_dict()}, "wrapped.pt")

model = Net()
result = model.load_state_dict(torch.load("wrapped.pt", weights_only=True)["model"],
                               strict=False)  # no error, no warning
print(len(result.missing_keys), "missing,", len(result.unexpected_keys), "unexpected")
print("fc1.weight loaded:", torch.equal(model.fc1.weight, old.fc1.weight))
# --8<-- [end:strict_false_nothing]

with expect_error(RuntimeError, "size mismatch for head.weight"):
    # --8<-- [start:strict_false_shape]
    model = FineTune()
    model.load_state_dict(checkpoint["model"], strict=False)
    # --8<-- [end:strict_false_shape]

# --8<-- [start:load_weights_use]
model = FineTune()
print(load_weights(model, checkpoint["model"], skip=("head.",)))  # left as initialised
model = Net()
print(load_weights(model, torch.load("wrapped.pt", weights_only=True)["model"]))
print("fc1.weight loaded:", torch.equal(model.fc1.weight, old.fc1.weight))
# --8<-- [end:load_weights_use]

with expect_error(ValueError, "a checkpoint of another model"):
    # --8<-- [start:load_weights_refuses]
    other = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 4))
    load_weights(Net(), other.state_dict())
    # --8<-- [end:load_weights_refuses]

# --8<-- [start:stages]
import torch

# The layers unfrozen at each stage, in this order, each with its own learning rate.
STAGES = [("head", 1e-3), ("fc2", 3e-4), ("fc1", 1e-4)]


def set_trainable(model, stage):
    trainable = {layer for layer, _ in STAGES[: stage + 1]}
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] in trainable)


def group(model, stage):
    """The parameter group that `stage` adds: named, with its learning rate."""
    layer, lr = STAGES[stage]
    return {"name": layer, "lr": lr,
            "params": [(n, p) for n, p in model.named_parameters() if n.split(".")[0] == layer]}


def build_optimizer(model, stage):
    """The optimizer as unfreezing stage by stage leaves it: the same groups, same order."""
    set_trainable(model, stage)
    return torch.optim.Adam([group(model, s) for s in range(stage + 1)])


def unfreeze(model, optimizer, stage):
    set_trainable(model, stage)
    optimizer.add_param_group(group(model, stage))


def resume(model, checkpoint):
    """Rebuild the saved stage's optimizer, check it, then load. The checkpoint holds
    "model", "optimizer" and "stage"."""
    model.load_state_dict(checkpoint["model"])
    optimizer = build_optimizer(model, checkpoint["stage"])
    check_same_parameters(optimizer, checkpoint["optimizer"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return optimizer
# --8<-- [end:stages]

# --8<-- [start:stages_run]
model = Net()
model.load_state_dict(checkpoint["model"])  # pretrained weights
optimizer = build_optimizer(model, 0)  # the head alone
train(model, optimizer)
unfreeze(model, optimizer, 1)  # then fc2, at a lower learning rate
train(model, optimizer)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "stage": 1},
           "staged.pt")

resumed = Net()
resumed_optimizer = resume(resumed, torch.load("staged.pt", weights_only=True))
print([(g["name"], g["lr"], len(g["params"])) for g in resumed_optimizer.param_groups])
train(model, optimizer)
train(resumed, resumed_optimizer)
print("same as without the restart:",
      all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters())))
# --8<-- [end:stages_run]

with expect_error(ValueError, "different number of parameter groups"):
    # --8<-- [start:stage_missing]
    staged = torch.load("staged.pt", weights_only=True)
    model = Net()
    model.load_state_dict(staged["model"])
    optimizer = build_optimizer(model, 0)  # the stage was not saved: start from stage 0
    optimizer.load_state_dict(staged["optimizer"])
    # --8<-- [end:stage_missing]

# --8<-- [start:groups_silent]
STAGES = [("head", 1e-3), ("fc1", 1e-4), ("fc2", 3e-4)]  # changed since the save

model = Net()
model.load_state_dict(staged["model"])
optimizer = build_optimizer(model, staged["stage"])  # two groups, as saved: fc1 where fc2 was
optimizer.load_state_dict(staged["optimizer"])  # no error

fc2_moment = staged["optimizer"]["state"][2]["exp_avg"]  # position 2: fc2.weight when saved
print("fc1.weight holds the exp_avg of fc2.weight:",
      torch.equal(optimizer.state[model.fc1.weight]["exp_avg"], fc2_moment))
print("group 1:", optimizer.param_groups[1]["name"], optimizer.param_groups[1]["lr"])
# --8<-- [end:groups_silent]

with expect_error(ValueError, "in the checkpoint"):
    # --8<-- [start:groups_check]
    resume(Net(), staged)  # check_same_parameters, before the load
    # --8<-- [end:groups_check]

# --8<-- [start:frozen_inside]
model = Net()
optimizer = torch.optim.Adam(model.named_parameters())  # every parameter, one group
model.fc1.requires_grad_(False)  # frozen: no gradient, so step() skips them
model.fc2.requires_grad_(False)
before = model.fc1.weight.clone()
train(model, optimizer)
saved = optimizer.state_dict()
print("parameters in the group:", len(saved["param_groups"][0]["params"]),
      "with state:", sorted(saved["state"]))
print("fc1.weight unchanged:", torch.equal(model.fc1.weight, before))

model.fc1.requires_grad_(True)  # unfrozen: its state starts now, at step 1
model.fc2.requires_grad_(True)
train(model, optimizer, steps=1)
print("step of fc1.weight:", int(optimizer.state[model.fc1.weight]["step"]),
      "of head.weight:", int(optimizer.state[model.head.weight]["step"]))
# --8<-- [end:frozen_inside]
