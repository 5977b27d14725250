# Troubleshooting, the running example: the model, the data and the checkpoint that the
# error sections use. Page: docs/troubleshooting/errors.md (and .ja.md), its first block.
# The family files beside it (devices.py, untrusted_files.py, ...) import it when they run
# as scripts; on the page, this block simply runs first.
import contextlib


@contextlib.contextmanager
def expect_error(exc_type, match):
    """Run a section that the page shows raising `exc_type`, so that the file still runs on;
    the page shows the section unwrapped, marked raises(...). Not on the page."""
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
    param = next(model.parameters())  # inputs follow the model's device and dtype
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs.to(param)), targets.to(param.device)).backward()
        optimizer.step()


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train(model, optimizer)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pt")
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
# --8<-- [end:setup]
