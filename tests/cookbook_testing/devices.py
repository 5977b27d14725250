"""What hardware this run has."""

import functools


@functools.cache
def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def gpu_count() -> int:
    if not cuda_available():
        return 0
    import torch
    return torch.cuda.device_count()
