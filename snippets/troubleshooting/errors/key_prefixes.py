# Troubleshooting, the module. and _orig_mod. prefixes.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:prefix_module]
wrapped = nn.DataParallel(Net())  # DistributedDataParallel adds the same prefix
torch.save(wrapped.state_dict(), "wrapped.pt")
print(list(wrapped.state_dict())[:2])
state_dict = torch.load("wrapped.pt", map_location="cpu", weights_only=True)
model = Net()
# --8<-- [end:prefix_module]

with expect_error(RuntimeError, "Missing key(s)"):
    # --8<-- [start:prefix_module_load]
    model.load_state_dict(state_dict)
    # --8<-- [end:prefix_module_load]

# --8<-- [start:prefix_strict_false]
before = model.fc1.weight.clone()
result = model.load_state_dict(state_dict, strict=False)  # no error...
print(len(result.missing_keys), "missing,", len(result.unexpected_keys), "unexpected")
assert torch.equal(model.fc1.weight, before)  # ...and nothing was loaded
# --8<-- [end:prefix_strict_false]

# --8<-- [start:prefix_fix]
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

consume_prefix_in_state_dict_if_present(state_dict, "module.")  # in place; no-op if absent
model.load_state_dict(state_dict)
# (with a GPU present, DataParallel has moved its module to the first GPU)
assert torch.equal(model.fc1.weight, wrapped.module.fc1.weight.cpu())
# --8<-- [end:prefix_fix]

# --8<-- [start:prefix_compile]
compiled = torch.compile(Net())  # nothing is compiled until the first call
print(list(compiled.state_dict())[:2])

torch.save(compiled._orig_mod.state_dict(), "plain_keys.pt")  # save the module inside
Net().load_state_dict(torch.load("plain_keys.pt", weights_only=True))

state_dict = compiled.state_dict()  # or strip the prefix from a file already written
consume_prefix_in_state_dict_if_present(state_dict, "_orig_mod.")
Net().load_state_dict(state_dict)
# --8<-- [end:prefix_compile]
