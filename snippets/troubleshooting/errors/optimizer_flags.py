# Troubleshooting, capturable and fused saved with the optimizer.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:capturable_setup]
# A checkpoint written by Adam(capturable=True) on a GPU: its param_groups say so.
model = Net()
saved = torch.optim.Adam(model.parameters(), capturable=True).state_dict()
print(saved["param_groups"][0]["capturable"])

# Loaded on a CPU machine into a plain Adam: the saved flag wins.
optimizer = torch.optim.Adam(model.parameters())
optimizer.load_state_dict(saved)
# --8<-- [end:capturable_setup]

with expect_error(AssertionError, "If capturable=True"):
    # --8<-- [start:capturable_error]
    train(model, optimizer)
    # --8<-- [end:capturable_error]

# --8<-- [start:capturable_fix]
for group in optimizer.param_groups:
    group["capturable"] = False  # after loading: this machine has no CUDA graphs
train(model, optimizer)
# --8<-- [end:capturable_fix]

# --8<-- [start:fused_flag]
model = Net()
plain = torch.optim.Adam(model.parameters())
train(model, plain)

fused = torch.optim.Adam(model.parameters(), fused=True)
fused.load_state_dict(plain.state_dict())
print("fused after loading:", fused.param_groups[0]["fused"])

for group in fused.param_groups:
    group["fused"] = True  # set it again after loading,
fused.load_state_dict(fused.state_dict())  # and cast `step` as the fused kernel wants it
train(model, fused)
p = model.fc1.weight
assert fused.state[p]["step"].device == p.device and fused.state[p]["step"].dtype == torch.float32
# --8<-- [end:fused_flag]
