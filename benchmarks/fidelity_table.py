"""Fidelity ablations: each change to the default recipe alone against it, same teacher, student and budget, on
every single-sentence task, so a change that helps one task only shows as such.

    python benchmarks/fidelity_table.py                                  # SST-2 and TREC, seed 0, every variant
    python benchmarks/fidelity_table.py --variants default,hard-rows --seeds 0,1,2
    python benchmarks/fidelity_table.py --steps 10000 --transfer-size 250000    # the default recipe's own budget

Teachers come from benchmarks/teachers.py (runs/teachers/<task>). SST-2 is scored on dev + test. A finished run
whose configuration matches is reused; anything else is run again.
"""

from __future__ import annotations

from common import variant_table

VARIANTS = {
    "default": {},
    "hard-rows": dict(hard_fraction=0.5),
    "hard-rows-quarter": dict(hard_fraction=0.25),
    "mse-centred": dict(mse_centred=True),
    "questions": dict(augment_kinds="part,near-copy,question"),
    # shapes at one size: the default student's at this budget (0.79M), spent differently
    "size-790k": dict(max_parameters=790_000),
    "two-layers-790k": dict(max_parameters=790_000, student_options="num_layers=2"),
    "vocab-8k-790k": dict(max_parameters=790_000, max_vocab=8000),
    "indomain": dict(method="indomain"),  # the ceiling: the task's own text, with variants of it in the room left
    "indomain-plain": dict(method="indomain", augment=0),  # the ceiling before: the text alone
    "indomain-790k": dict(method="indomain", max_parameters=790_000),  # the ceiling at the zero-shot student's size
}


if __name__ == "__main__":
    variant_table(__doc__, "fidelity_table", VARIANTS, tasks="sst2,trec")
