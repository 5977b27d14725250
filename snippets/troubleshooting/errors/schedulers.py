# Troubleshooting, learning rates and schedulers on resume.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:lr_overwritten]
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train(model, optimizer)
torch.save(optimizer.state_dict(), "optimizer.pt")

# Resume with a smaller learning rate:
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
optimizer.load_state_dict(torch.load("optimizer.pt", weights_only=True))
print(optimizer.param_groups[0]["lr"])
# --8<-- [end:lr_overwritten]

# --8<-- [start:lr_fix]
for group in optimizer.param_groups:
    group["lr"] = 1e-4  # after loading
print(optimizer.param_groups[0]["lr"])
# --8<-- [end:lr_fix]

# --8<-- [start:scheduler_setup]
def build():
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, optimizer


def make_schedulers(optimizer):
    return [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=10)]


model, optimizer = build()
schedulers = make_schedulers(optimizer)
for _ in range(5):
    train(model, optimizer, steps=1)
    schedulers[0].step()
saved = {"optimizer": optimizer.state_dict(), "scheduler": schedulers[0].state_dict()}

schedulers[0].step()
expected_lr = optimizer.param_groups[0]["lr"]  # the uninterrupted run, one step later
print(f"uninterrupted: {expected_lr:.2e}")
# --8<-- [end:scheduler_setup]

# --8<-- [start:scheduler_wrong_order]
model, optimizer = build()
optimizer.load_state_dict(saved["optimizer"])  # loaded before the scheduler exists...
scheduler = make_schedulers(optimizer)[0]  # ...whose constructor resets the lr
scheduler.load_state_dict(saved["scheduler"])
scheduler.step()
print(f"wrong order:   {optimizer.param_groups[0]['lr']:.2e}")
# --8<-- [end:scheduler_wrong_order]

# --8<-- [start:scheduler_right_order]
model, optimizer = build()
scheduler = make_schedulers(optimizer)[0]  # build both first,
optimizer.load_state_dict(saved["optimizer"])  # then load both
scheduler.load_state_dict(saved["scheduler"])
scheduler.step()
print(f"right order:   {optimizer.param_groups[0]['lr']:.2e}")
assert optimizer.param_groups[0]["lr"] == expected_lr
# --8<-- [end:scheduler_right_order]

# --8<-- [start:lambda_lr]
def warmup(step):
    return min(1.0, (step + 1) / 10)


results = {}
for order in ("wrong", "right"):
    model, optimizer = build()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
    for _ in range(5):
        train(model, optimizer, steps=1)
        scheduler.step()
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    expected_lr = optimizer.param_groups[0]["lr"]

    model, optimizer = build()
    if order == "wrong":
        optimizer.load_state_dict(saved["optimizer"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
        optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    results[order] = optimizer.param_groups[0]["lr"]
    print(f"{order} order: lr {results[order]:.2e} (saved: {expected_lr:.2e})")
assert results["right"] == expected_lr != results["wrong"]
# --8<-- [end:lambda_lr]
