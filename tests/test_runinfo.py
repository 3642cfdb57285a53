import subprocess
import sys

from zskd.runinfo import peak_memory_mib


def test_peak_memory_is_the_child_process_own_not_its_parents():
    held = bytearray(1024 * 1024 * 1024)  # the parent's peak grows by 1 GiB before it starts the child
    held[:: 4096] = b"\1" * len(held[:: 4096])
    child = subprocess.run([sys.executable, "-c", "from zskd.runinfo import peak_memory_mib; print(peak_memory_mib())"],
                           capture_output=True, text=True, check=True)
    assert peak_memory_mib() > 1024
    assert float(child.stdout) < peak_memory_mib() - 700
    del held
