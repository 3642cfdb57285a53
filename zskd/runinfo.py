"""What every run records beside its results: package versions, the machine it ran on, its peak memory."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch


def versions() -> dict[str, str]:
    import transformers

    import zskd

    return {"zskd": zskd.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def machine_description() -> str:
    """CPU model, core count, torch threads and the GPU where torch sees one, e.g. for printing beside absolute
    timings (a run on a GPU labels and trains there, so its times say nothing of the CPU)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}{gpu}, {platform.system()}"


def peak_memory_mib() -> float:
    """Peak resident memory of this process, MiB. On Linux from VmHWM: `ru_maxrss` carries the parent's peak over
    fork and exec, so a benchmark stage started after the parent trained a teacher reported the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
