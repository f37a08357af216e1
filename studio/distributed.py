"""Several processes training one run: `studio train --gpus N`, `torchrun` or `accelerate launch`.

Every process trains a shard of each batch (data parallel, through accelerate inside the HF
Trainer). Rank 0 alone writes the run directory's shared files and reads controls; the
collectives here make every rank take the same decision at the same step. With one process
every function is a cheap no-op, so the trainer calls them unconditionally.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) before anything needs a collective.

    accelerate reuses a group that exists, so the run can agree on its directory before the
    Trainer is built.
    """
    if world_size() > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def _active() -> bool:
    return world_size() > 1 and dist.is_initialized()


def _device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
    return torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier() -> None:
    if _active():
        dist.barrier()


def broadcast(value):
    """Rank 0's `value` on every rank (any picklable object)."""
    if not _active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce(values: Sequence[float], op: str = "sum") -> list[float]:
    """Elementwise sum or max of `values` over the ranks, as Python floats."""
    if not _active():
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor.tolist()


def any_rank(flags: Sequence[bool]) -> list[bool]:
    """For each flag, whether it is set on any rank."""
    return [value > 0 for value in all_reduce([float(f) for f in flags], op="max")]
