"""benchmarks/pair_overlap.py: the overlap bands of a pair task, by hand."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_pair_overlap():
    """benchmarks/pair_overlap.py as a module (it imports `common` from its own directory)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("pair_overlap", BENCHMARKS / "pair_overlap.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


pair_overlap = load_pair_overlap()


def test_bands_give_each_class_mix_and_the_agreement_on_each_teacher_class():
    overlap = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.7])
    teacher = np.array([1, 0, 0, 1, 1, 0])
    student = np.array([1, 0, 1, 0, 1, 0])
    low, high = pair_overlap.overlap_bands(overlap, teacher, student, ["a", "b"], bands=2)
    # low band: overlaps 0.1, 0.2, 0.3; teacher 0, 0, 1; student 0, 1, 1
    assert low["overlap"] == "0.10-0.30" and low["pairs"] == 3 and low["agreement"] == 66.7
    assert (low["teacher a"], low["student a"]) == (66.7, 33.3)
    assert (low["agreement on teacher's a"], low["agreement on teacher's b"]) == (50.0, 100.0)
    # high band: overlaps 0.7, 0.8, 0.9; teacher 0, 1, 1; student 0, 0, 1
    assert high["overlap"] == "0.70-0.90" and high["agreement"] == 66.7
    assert (high["teacher b"], high["student b"]) == (66.7, 33.3)
    assert (high["agreement on teacher's a"], high["agreement on teacher's b"]) == (100.0, 50.0)
