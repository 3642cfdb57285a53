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


def by_class_text(agreement_by_class: dict[str, float | None]) -> str:
    """Per-class agreement on one line, "name 12.34%, ...", for the classes the teacher predicts."""
    return ", ".join(f"{name} {value:.2f}%" for name, value in agreement_by_class.items() if value is not None)


def confusion_table(confusion: Sequence[Sequence[int]], label_names: Sequence[str]) -> str:
    """Rows are true labels, columns predicted labels."""
    return markdown_table(["true \\ predicted", *label_names],
                          [[name, *row] for name, row in zip(label_names, confusion)])


def model_card(report: dict) -> str:
    """A short README for a student directory: what it is, how faithful, how small, how it was made."""
    lines = [
        f"# zskd student: {report['student']} distilled with `{report['method']}`",
        "",
        f"Teacher: {report.get('teacher') or report['config'].get('teacher')}. Transfer set: {report['transfer']}.",
    ]
    if report.get("in_domain"):
        lines.append("**This run used the task's own training text (in-domain ceiling): "
                     "it is not a zero-shot result.**")
    if report.get("few_shot_examples"):
        lines.append(f"Low-data run: the student also trained on {report['few_shot_examples']} labelled examples.")
    lines += [
        "",
        markdown_table(["", "parameters", "compression"], [
            ["teacher", f"{report['teacher_parameters']:,}" if report["teacher_parameters"] else
             f"unknown (answers only: {report['teacher']})", "1x"],
            ["student", f"{report['student_parameters']:,}",
             f"{report['compression']}x" if report["compression"] else "unknown"],
        ]),
        "",
        f"Agreement with the teacher on {report['heldout_size']} held-out transfer inputs: "
        f"{report['heldout_agreement']:.2f}% (best checkpoint, chosen by this number only).",
    ]
    if "eval" in report:
        e = report["eval"]
        columns = [e["metric"], "accuracy", "macro_f1"] if e["metric"] != "accuracy" else ["accuracy", "macro_f1"]
        lines += [
            "",
            f"On {e['data']} ({e['n']} labelled examples, used for reporting only):",
            "",
            markdown_table(["", *(c.replace("_", "-") for c in columns)], [
                [who, *(e[who][c if c in ("accuracy", "macro_f1") else "task_metric"] for c in columns)]
                for who in ("teacher", "student")
            ]),
            "",
            f"Student = {e['percent_of_teacher']:.2f}% of the teacher's {e['metric']}; "
            f"the two agree on {e['agreement']:.2f}% of inputs.",
        ]
        if "agreement_by_class" in e:  # reports of older runs lack these two
            trivial = e["constant_answer"]
            lines += ["", f"Agreement on each class the teacher predicts: {by_class_text(e['agreement_by_class'])}. "
                          "Answering "
                          f"\"{trivial['label']}\" to everything scores {trivial['task_metric']:.2f} {e['metric']}."]
    if "pair_profile" in report:
        profiles = report["pair_profile"]
        lines += ["", "What the pairs looked like (the transfer set's against the labelled examples': held-out "
                      "agreement on transfer pairs says little about pairs unlike them):", "",
                  markdown_table(["pairs", "n", "words, first", "words, second", "second's words in first %",
                                  "teacher's classes %"],
                                 [[who, p["pairs"], p["words_first"], p["words_second"], p["second_words_in_first"],
                                   ", ".join(f"{k} {v}" for k, v in p["teacher_classes"].items())]
                                  for who, p in profiles.items() if p["pairs"]])]
    by_kind = report.get("transfer_info", {}).get("classes_by_kind")
    if by_kind:
        lines += ["", "The teacher's classes by how the pairs were made (kept / labelled): " + "; ".join(
            f"{kind} " + ", ".join(f"{c} {counts['after'][c]}/{counts['before'][c]}" for c in counts["before"])
            for kind, counts in by_kind.items()) + "."]
    lines += [
        "",
        f"Made in {report['total_seconds']:.0f} s on {report['machine']} "
        f"(transfer set {report['transfer_seconds']:.0f} s, "
        f"training {report['train_seconds_this_session']:.0f} s, peak memory {report['peak_memory_mib']:.0f} MiB). "
        "Full configuration, versions and timings: `run.json`; learning curve: `metrics.jsonl`; "
        "a sample of the transfer set with the teacher's labels: `transfer_sample.tsv`"
        + "".join(f"; written by the method during training: `{name}`" for name in report.get("artefacts", [])) + ".",
        "",
        "## Using it",
        "",
        "```bash",
        "zskd predict --model DIR texts.txt                 # JSON lines: id, label, score, probabilities",
        "zskd eval --model DIR --data labelled.tsv --latency",
        "zskd export --model DIR --quantize int8 --check-data labelled.tsv   # model.onnx and model-int8.onnx",
        "zskd predict --model DIR --onnx --int8 texts.txt   # run by ONNX Runtime",
        "zskd serve --model DIR                             # POST /predict, GET /health on http://127.0.0.1:8080",
        "```",
        "",
        "From Python: `zskd.load_student(DIR).predict(texts)` (or `zskd.export.OnnxStudent(DIR).predict(texts)`); "
        "`.logits(texts)` gives the raw logits.",
    ]
    return "\n".join(lines) + "\n"
