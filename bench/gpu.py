"""Which CUDA device a run uses, what it is, and keeping every part of the run on it.

A run names one GPU (`device.index`; under torchrun each rank takes its LOCAL_RANK's). Left to themselves,
transformers' TrainingArguments would put the training on cuda:0 and wrap the model in DataParallel over every
visible GPU (its batch then per-device x GPUs), and CUDA events would be recorded on whichever device is
current: `hold` and `stream` hold them to the run's device.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any, Dict, Optional

import torch

from .config import DeviceConfig
from .errors import DeviceError


def distributed() -> bool:
    """Launched by torchrun (or a launcher like it): LOCAL_RANK is set, which is what puts accelerate, and so the
    Trainer, into DDP on the GPU of that rank, even with one process."""
    return os.environ.get("LOCAL_RANK") is not None


def run_index(cfg: DeviceConfig, strict: bool = True) -> int:
    """The CUDA index this process runs on: device.index, or under torchrun its LOCAL_RANK modulo the GPUs this
    process sees (accelerate's mapping; 0 where a launcher shows each rank its own GPU). `strict`: refuse a
    device.index that torchrun would override, and a LOCAL_RANK that is not a number, with the reason."""
    if not distributed():
        return cfg.index
    try:
        local = int(os.environ["LOCAL_RANK"])
    except ValueError:
        if strict:
            raise DeviceError(f"LOCAL_RANK={os.environ['LOCAL_RANK']!r} is not a rank number (set by torchrun)")
        return cfg.index
    if cfg.index and strict:
        raise DeviceError(
            f"device.index={cfg.index} under torchrun (LOCAL_RANK={local}): each rank runs on the GPU of its "
            "LOCAL_RANK; choose the GPUs with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=2,3 torchrun ...)"
        )
    return local % max(torch.cuda.device_count(), 1)


def native_bf16(device: torch.device) -> bool:
    """bf16 with tensor-core support on this GPU (sm80+); before that torch runs it, emulated and slow."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def stream(device: torch.device):
    """The current stream of the run's GPU, whatever device is current: CUDA events recorded on it time that
    GPU's work (recorded on another device's stream they would time nothing but the host's queueing)."""
    return torch.cuda.current_stream(device)


def gpu_info(index: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """The GPU a run uses (`index`, else the current device), as the environment record names it. An index this
    process cannot see (the run itself is refused by setup_device) is recorded as missing, never as another GPU."""
    if not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    if index is not None and not 0 <= index < count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return {"name": None, "index": index, "count": count, "visible_devices": visible, "missing": True}
    idx = index if index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(idx)
    uuid = getattr(props, "uuid", None)
    info: Dict[str, Any] = {
        "name": props.name,
        "index": idx,
        "uuid": str(uuid) if uuid else None,
        "count": count,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "memory_bytes": props.total_memory,
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": None,
    }
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        info["driver"] = out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def hold(args, chosen: torch.device, device: torch.device) -> torch.device:
    """A TrainingArguments' device (`chosen`, transformers' pick) held to the run's `device` on one GPU.

    transformers makes cuda:0 current and counts every visible GPU (DataParallel when more than one): a run that
    asked for cuda:N trained on GPU 0 and scored on GPU N. Outside torchrun `device` is made current and one GPU
    counted (accelerate places the model and batches on the current device, the Trainer on `args.device`); under
    torchrun accelerate's per-rank choice stands (DDP, one GPU per rank)."""
    from accelerate.utils import DistributedType

    state = getattr(args, "distributed_state", None)  # accelerate's verdict, which the Trainer follows
    in_ddp = state is not None and state.distributed_type != DistributedType.NO
    if chosen.type != "cuda" or device.type != "cuda" or distributed() or in_ddp:
        return chosen
    torch.cuda.set_device(device)
    args._n_gpu = 1
    return device
