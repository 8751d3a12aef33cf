"""Devices and processes: cpu/cuda/npu selection, torchrun's environment, and a local launcher.

How the seeds' distributed knobs map onto infer-kit (the ModelZoo scripts are pytorch/examples'
``main.py`` with Ascend additions):

=====================================  =====================================================================
seed script knob                       infer-kit
=====================================  =====================================================================
``--multiprocessing-distributed``,     ``--nproc N`` (spawns N local processes) or
``--world-size`` (8p scripts)          ``torchrun --nproc_per_node N -m infer_kit train ...``
``--device-list '0,1,2,3'``            ``--device-list 0,1,2,3``: local rank i uses device list[i]
``--addr`` / ``--dist-url``            ``--master-addr``/``--master-port`` with ``--nproc``; torchrun's own flags
``--nnodes --node_rank --master_addr`` torchrun's ``--nnodes --node_rank --master_addr --master_port``
``--dist-backend``                     ``--dist-backend`` (default: nccl on cuda, hccl on npu, gloo on cpu)
=====================================  =====================================================================

Under torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) every process runs the
same command and this module only joins the process group.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infer_kit.console import log
from infer_kit.errors import BackendUnavailable, InferKitError
from infer_kit.workers import cpu_count

if TYPE_CHECKING:
    import torch

    from infer_kit.trainer.config import TrainConfig

DEFAULT_BACKENDS = {"cpu": "gloo", "cuda": "nccl", "npu": "hccl"}
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def under_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARS)


def npu_available() -> bool:
    """True when torch_npu imports and sees at least one Ascend device."""
    try:
        import torch
        import torch_npu  # noqa: F401
    except ImportError:
        return False
    npu = getattr(torch, "npu", None)
    return bool(npu is not None and npu.is_available())


def resolve_device_type(requested: str) -> str:
    """``auto`` -> cuda, else npu, else cpu; an explicit device that is missing is an error."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "npu" if npu_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("--device cuda: no CUDA device is visible to torch", hint="use --device cpu")
    if requested == "npu" and not npu_available():
        raise BackendUnavailable(
            "--device npu: torch_npu is not importable or sees no Ascend device",
            hint="install CANN and torch_npu, or use --device cpu",
        )
    return requested


def select_device(device_type: str, local_rank: int, device_list: tuple[int, ...]) -> torch.device:
    """The device of local rank ``local_rank``: ``device_list[local_rank]`` when a list is given."""
    import torch

    if device_type == "cpu":
        return torch.device("cpu")
    index = device_list[local_rank] if device_list else local_rank
    module = getattr(torch, device_type)
    if index >= module.device_count():
        raise InferKitError(
            f"{device_type} device {index} does not exist (this machine has {module.device_count()})",
            hint="fix --device-list or the number of processes",
        )
    module.set_device(index)
    return torch.device(device_type, index)


def init_distributed(config: TrainConfig) -> DistEnv:
    """Join the process group torchrun (or :func:`launch`) described in the environment."""
    device_type = resolve_device_type(config.device)
    if device_type == "cpu" and config.device_list and int(os.environ.get("RANK", "0")) == 0:
        log.warning("--device-list names accelerator ids; it is ignored on cpu")
    if not under_torchrun():
        return DistEnv(0, 1, 0, select_device(device_type, 0, config.device_list), None)
    rank, world_size, local_rank = (int(os.environ[name]) for name in TORCHRUN_VARS)
    device = select_device(device_type, local_rank, config.device_list)
    backend = DEFAULT_BACKENDS[device_type] if config.dist_backend == "auto" else config.dist_backend
    if world_size == 1:
        return DistEnv(rank, 1, local_rank, device, None)
    import torch.distributed as dist

    if not dist.is_available():
        raise BackendUnavailable("this torch build has no torch.distributed")
    if backend == "hccl":
        import torch_npu  # noqa: F401  (registers the hccl backend)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if device.type != "cpu" else None)
    return DistEnv(rank, world_size, local_rank, device, backend)


def shutdown(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(env: DistEnv, values: list[float]) -> list[float]:
    """Sum ``values`` over all ranks (float64, so counts stay exact)."""
    if not env.distributed:
        return values
    import torch
    import torch.distributed as dist

    device = env.device if env.backend != "gloo" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_buffers(env: DistEnv, module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank, so all ranks hold one model."""
    if not env.distributed:
        return
    import torch.distributed as dist

    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(target: Callable[[TrainConfig], Any], config: TrainConfig) -> Any:
    """Run ``target(config)`` in ``config.nproc`` local processes joined as one torchrun-style group.

    Returns rank 0's return value (it must pickle). A user error in any rank is raised here as
    that rank's one-line :class:`InferKitError`; the other ranks are stopped.
    """
    import multiprocessing

    import torch.multiprocessing as tmp

    from infer_kit import console

    if under_torchrun():
        raise InferKitError("--nproc cannot be combined with torchrun", hint="let torchrun start the processes")
    port = config.master_port or free_port()
    threads = config.threads or max(1, cpu_count() // config.nproc)
    queue = multiprocessing.get_context("spawn").SimpleQueue()
    context = tmp.start_processes(
        _spawned_worker, args=(target, config, queue, config.master_addr, port, threads, console.verbosity()),
        nprocs=config.nproc, join=False, start_method="spawn",
    )
    try:
        while not context.join():
            pass
    except (tmp.ProcessExitedException, tmp.ProcessRaisedException) as exc:
        messages = _drain(queue)
        failure = next((m for m in messages if m[0] == "error"), None)
        if failure is not None:
            raise InferKitError(f"rank {failure[1]}: {failure[2]}") from None
        raise InferKitError(f"training process failed: {str(exc).strip().splitlines()[-1]}") from None
    results = [m for m in _drain(queue) if m[0] == "result"]
    return results[0][2] if results else None


def _drain(queue: Any) -> list[tuple[Any, ...]]:
    items = []
    while not queue.empty():
        items.append(queue.get())
    return items


def _spawned_worker(local_rank: int, target: Callable[[TrainConfig], Any], config: TrainConfig, queue: Any,
                    master_addr: str, port: int, threads: int, verbosity: int) -> None:
    import torch

    os.environ.update({
        "RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(config.nproc),
        "LOCAL_WORLD_SIZE": str(config.nproc), "MASTER_ADDR": master_addr, "MASTER_PORT": str(port),
    })
    torch.set_num_threads(threads)
    from infer_kit import console

    console.configure(verbosity if local_rank == 0 else -1)
    try:
        value = target(config)
    except InferKitError as exc:
        queue.put(("error", local_rank, exc.one_line()))
        raise SystemExit(exc.exit_code) from None
    if local_rank == 0:
        queue.put(("result", local_rank, value))
