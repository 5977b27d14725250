# Troubleshooting: where Adam's state ends up when a checkpoint moves between devices.
# Page: docs/troubleshooting/cross-device.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
inputs, targets = torch.randn(32, 8), torch.randint(0, 4, (32,))


def train(model, optimizer, steps=2):
    device = next(model.parameters()).device
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs.to(device)), targets.to(device)).backward()
        optimizer.step()


def save(device, fused, path):
    """Train a little on `device` and write a checkpoint, as a training run would."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    train(model, optimizer)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)


def resume(path, device, fused, map_location="cpu"):
    """The load sequence: model to its device, optimizer on its parameters, then load."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    train(model, optimizer)  # the state stays where it was put
    return model, optimizer


def where(optimizer):
    """Device of each kind of state tensor, the same for every parameter."""
    found = {}
    for state in optimizer.state.values():
        for key, value in state.items():
            found.setdefault(key, set()).add(str(value.device))
    assert all(len(devices) == 1 for devices in found.values()), found
    return {key: devices.pop() for key, devices in sorted(found.items())}
# --8<-- [end:setup]

# --8<-- [start:cpu_to_cpu]
for fused in (False, True):
    save("cpu", fused, "cpu.pt")
    model, optimizer = resume("cpu.pt", "cpu", fused)
    print(f"fused={fused!s:5}", where(optimizer))
    assert where(optimizer) == {"exp_avg": "cpu", "exp_avg_sq": "cpu", "step": "cpu"}
# --8<-- [end:cpu_to_cpu]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:gpu_to_gpu]
    for fused in (False, True):
        save("cuda", fused, "gpu.pt")
        model, optimizer = resume("gpu.pt", "cuda", fused)
        print(f"fused={fused!s:5}", where(optimizer))
        step = "cuda:0" if fused else "cpu"
        assert where(optimizer) == {"exp_avg": "cuda:0", "exp_avg_sq": "cuda:0", "step": step}
    # --8<-- [end:gpu_to_gpu]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:map_location_cuda]
    model, optimizer = resume("gpu.pt", "cuda", fused=False, map_location="cuda")
    print(where(optimizer))
    assert where(optimizer)["step"] == "cuda:0"  # read back with .item() at every step
    # --8<-- [end:map_location_cuda]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:gpu_to_cpu]
    for fused in (False, True):
        save("cuda", fused, "gpu.pt")
        model, optimizer = resume("gpu.pt", "cpu", fused)
        print(f"fused={fused!s:5}", where(optimizer))
        assert where(optimizer) == {"exp_avg": "cpu", "exp_avg_sq": "cpu", "step": "cpu"}
    # --8<-- [end:gpu_to_cpu]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:cpu_to_gpu]
    for fused in (False, True):
        save("cpu", fused, "cpu.pt")
        model, optimizer = resume("cpu.pt", "cuda", fused)
        print(f"fused={fused!s:5}", where(optimizer))
        step = "cuda:0" if fused else "cpu"
        assert where(optimizer) == {"exp_avg": "cuda:0", "exp_avg_sq": "cuda:0", "step": step}
    # --8<-- [end:cpu_to_gpu]

if torch.cuda.device_count() >= 2:  # the page shows this section unindented
    # --8<-- [start:gpu0_to_gpu1]
    for fused in (False, True):
        save("cuda:0", fused, "gpu0.pt")
        model, optimizer = resume("gpu0.pt", "cuda:1", fused)
        print(f"fused={fused!s:5}", where(optimizer))
        step = "cuda:1" if fused else "cpu"
        assert where(optimizer) == {"exp_avg": "cuda:1", "exp_avg_sq": "cuda:1", "step": step}
    # --8<-- [end:gpu0_to_gpu1]
