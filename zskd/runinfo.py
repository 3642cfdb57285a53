"""What every run records beside its results: package versions and the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def versions() -> dict[str, str]:
    import transformers

    import zskd

    return {"zskd": zskd.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def machine_description() -> str:
    """CPU model, core count and torch threads, e.g. for printing beside absolute timings."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {platform.system()}"
