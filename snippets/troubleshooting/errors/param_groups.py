# Troubleshooting, parameter groups and parameter order.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:group_size]
model = Net()
saved = torch.optim.Adam(model.parameters()).state_dict()  # 6 parameters

model.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))  # 8 parameters now
optimizer = torch.optim.Adam(model.parameters())
# --8<-- [end:group_size]

with expect_error(ValueError, "doesn't match the size"):
    # --8<-- [start:group_size_load]
    optimizer.load_state_dict(saved)
    # --8<-- [end:group_size_load]

with expect_error(ValueError, "different number of parameter groups"):
    # --8<-- [start:group_count]
    model = Net()
    saved = torch.optim.Adam(model.parameters()).state_dict()  # one group

    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    optimizer.load_state_dict(saved)
    # --8<-- [end:group_count]

# --8<-- [start:order_silent]
class NetReordered(Net):
    """The same layers, but fc2 is created before fc1: parameters() yields a new order."""

    def __init__(self):
        nn.Module.__init__(self)
        self.fc2 = nn.Linear(8, 8)
        self.fc1 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)


old = Net()
old_optimizer = torch.optim.Adam(old.parameters())
train(old, old_optimizer)

new = NetReordered()
new.load_state_dict(old.state_dict())  # by name: fine
new_optimizer = torch.optim.Adam(new.parameters())
new_optimizer.load_state_dict(old_optimizer.state_dict())  # by position: no error...

# ...but fc1's weight now carries the moments that belonged to fc2's weight.
assert torch.equal(new_optimizer.state[new.fc1.weight]["exp_avg"],
                   old_optimizer.state[old.fc2.weight]["exp_avg"])
train(new, new_optimizer)  # trains on, with the wrong moments
# --8<-- [end:order_silent]

with expect_error(RuntimeError, "must match the size"):
    # --8<-- [start:order_error]
    reversed_optimizer = torch.optim.Adam(list(new.parameters())[::-1])
    reversed_optimizer.load_state_dict(old_optimizer.state_dict())
    train(new, reversed_optimizer)
    # --8<-- [end:order_error]

# --8<-- [start:order_fix]
import re


def plain_name(name):
    """fc1.weight for module.fc1.weight (DDP, DataParallel) or _orig_mod.fc1.weight (compile)."""
    return re.sub(r"(^|\.)(module|_orig_mod)\.", r"\1", name)


def load_by_name(optimizer, saved):
    """Load an optimizer state dict by parameter name, not by position.

    Both optimizers must be built from model.named_parameters() (torch 2.6 or later records
    the names as `param_names`), with the same number of groups. Parameters new since the
    save start without state; saved ones that are gone are dropped; a saved moment whose
    shape differs from its parameter's is refused. Returns (new names, dropped names)."""
    groups = optimizer.param_groups
    for where, gs in (("this optimizer", groups), ("the checkpoint", saved["param_groups"])):
        if any("param_names" not in g for g in gs):
            raise ValueError(f"{where} has no param_names: build the optimizer from "
                             "model.named_parameters() (torch 2.6 or later)")
    if len(groups) != len(saved["param_groups"]):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups in the checkpoint, "
                         f"{len(groups)} here: build the same groups first")
    by_name = {plain_name(name): saved["state"][i]
               for g in saved["param_groups"] for i, name in zip(g["params"], g["param_names"])
               if i in saved["state"]}
    state, new_groups, index, found = {}, [], 0, set()
    for group, saved_group in zip(groups, saved["param_groups"]):
        for p, name in zip(group["params"], group["param_names"]):
            entry = by_name.get(plain_name(name))
            if entry is not None:
                for key, value in entry.items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                        raise ValueError(f"{name}: saved {key} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(p.shape)}")
                state[index] = entry
                found.add(plain_name(name))
            index += 1
        hyperparameters = {k: v for k, v in saved_group.items() if k not in ("params", "param_names")}
        new_groups.append({**hyperparameters, "param_names": list(group["param_names"]),
                           "params": list(range(index - len(group["params"]), index))})
    optimizer.load_state_dict({"state": state, "param_groups": new_groups})
    names = [plain_name(n) for g in groups for n in g["param_names"]]
    return [n for n in names if n not in found], sorted(set(by_name) - found)


old_optimizer = torch.optim.Adam(old.named_parameters())  # the state dict records the names
train(old, old_optimizer)
saved = old_optimizer.state_dict()
print(saved["param_groups"][0]["param_names"])

new = NetReordered()
new.load_state_dict(old.state_dict())
new_optimizer = torch.optim.Adam(new.named_parameters())
print(load_by_name(new_optimizer, saved))  # nothing new, nothing dropped
assert torch.equal(new_optimizer.state[new.fc1.weight]["exp_avg"],
                   old_optimizer.state[old.fc1.weight]["exp_avg"])  # each on its own parameter
# --8<-- [end:order_fix]
