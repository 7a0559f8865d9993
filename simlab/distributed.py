"""Which process this is when `torchrun` (or `simlab run --nproc N`) starts several.

torchrun describes each process through environment variables (RANK, WORLD_SIZE,
LOCAL_RANK); these helpers read them, so they answer before (and without) any process group.
The Hugging Face trainer sets up DDP itself from the same variables.
"""

from __future__ import annotations

import os


def rank() -> int:
    """Global rank of this process: 0 when not distributed."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """Number of training processes: 1 when not distributed."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    """Rank 0: the one process that writes, evaluates and tracks."""
    return rank() == 0


def finish() -> None:
    """Wait until every process is done training, then leave the process group (no-op when single)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def launch_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command that runs `python -m simlab ARGV` on `nproc` local CPU processes."""
    import sys

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "simlab",
        *argv,
    ]
