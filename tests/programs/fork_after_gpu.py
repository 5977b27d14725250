"""Train on the GPU, then fork a process that uses autograd: prints what torch raises."""

import torch
import torch.multiprocessing as mp

x = torch.ones(2, device="cuda", requires_grad=True)
(x * 2).sum().backward()  # this process has trained on the GPU


def child(rank):
    y = torch.ones(2, requires_grad=True)
    (y * 2).sum().backward()


try:
    mp.start_processes(child, nprocs=1, start_method="fork")
except mp.ProcessRaisedException as error:
    print(error)
