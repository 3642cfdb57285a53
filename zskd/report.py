"""Human-readable output: Markdown tables for the terminal, BENCHMARKS.md and model cards."""

from __future__ import annotations

from typing import Any, Sequence


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table with columns padded to equal width (readable raw in a terminal too)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def confusion_table(confusion: Sequence[Sequence[int]], label_names: Sequence[str]) -> str:
    """Rows are true labels, columns predicted labels."""
    return markdown_table(["true \\ predicted", *label_names], [[name, *row] for name, row in zip(label_names, confusion)])
