# Troubleshooting, device and dtype mismatches after loading, and GPU checkpoints on a CPU.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


with expect_error(RuntimeError, "expected dtype float"):
    # --8<-- [start:dtype_mismatch]
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.load_state_dict(checkpoint["optimizer"])  # state cast to float32 CPU params
    model.double()  # like model.to("cuda"): same Parameter objects, new dtype (or device)
    train(model, optimizer)
    # --8<-- [end:dtype_mismatch]

# --8<-- [start:right_order]
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

model = Net().to(device)  # 1. the model on its device
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # 2. the optimizer on its parameters
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
optimizer.load_state_dict(checkpoint["optimizer"])  # 3. load: moments go to the parameters' device
# --8<-- [end:right_order]

# --8<-- [start:right_order_check]
train(model, optimizer)
for p in model.parameters():
    assert optimizer.state[p]["exp_avg"].device == p.device
    assert optimizer.state[p]["step"].device.type == "cpu"  # Adam without fused/capturable
# --8<-- [end:right_order_check]

# --8<-- [start:repair_in_place]
# The parameters moved after the state was loaded: load the optimizer's own state dict
# again, and every moment is cast to its parameter's current device and dtype.
# Not after model.half(): see the warning below.
optimizer.load_state_dict(optimizer.state_dict())
# --8<-- [end:repair_in_place]

# --8<-- [start:repair_check]
broken_model = Net()
broken_optimizer = torch.optim.Adam(broken_model.parameters(), lr=1e-3)
broken_optimizer.load_state_dict(torch.load("checkpoint.pt", weights_only=True)["optimizer"])
broken_model.double()  # the state stays float32: the next step would fail as above

broken_optimizer.load_state_dict(broken_optimizer.state_dict())  # the repair
train(broken_model, broken_optimizer)
p = broken_model.fc1.weight
assert broken_optimizer.state[p]["exp_avg"].dtype == p.dtype == torch.float64
# --8<-- [end:repair_check]

# --8<-- [start:map_location]
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
# --8<-- [end:map_location]
