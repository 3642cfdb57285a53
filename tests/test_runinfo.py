import subprocess
import sys

import torch

from zskd.runinfo import machine_description, peak_memory_mib


def test_peak_memory_is_the_child_process_own_not_its_parents():
    held = bytearray(1024 * 1024 * 1024)  # the parent's peak grows by 1 GiB before it starts the child
    held[:: 4096] = b"\1" * len(held[:: 4096])
    child = subprocess.run([sys.executable, "-c", "from zskd.runinfo import peak_memory_mib; print(peak_memory_mib())"],
                           capture_output=True, text=True, check=True)
    assert peak_memory_mib() > 1024
    assert float(child.stdout) < peak_memory_mib() - 700
    del held


def test_machine_description_names_the_gpu_only_where_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "GPU" not in machine_description()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    assert ", GPU NVIDIA H200, " in machine_description()
