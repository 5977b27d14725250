# Troubleshooting, parameter groups and parameter order.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch
from checkpoint_files import load_by_name  # on the page: its own block, from the site's library


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
