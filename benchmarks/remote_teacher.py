"""A teacher behind HTTP against the same teacher in-process (issue 20): labelling throughput, and the student
distilled from each with the same recipe and seed.

    python benchmarks/remote_teacher.py                       # SST-2 teacher in runs/teachers/sst2, seed 0
    python benchmarks/remote_teacher.py --steps 10000 --transfer-size 250000                # the default budget
    python benchmarks/remote_teacher.py --raw-scores --steps 10000 --transfer-size 250000   # logits over HTTP

The teacher is served on a loopback port by `zskd serve`'s application in this process, speaking Hugging Face's
text-classification JSON (`--teacher-url`): probabilities, or with `--raw-scores` logits (`function_to_apply:
none`). The remote student is built on the teacher's own tokenizer and embeddings (`--student-base`), so that the
two runs differ only in where the labels come from (from probabilities, log-probabilities centred per input: the
same KL targets as in process, a logit-MSE target without the teacher's per-input logit mean; from raw scores, the
same logits). Throughput: `--texts` SST-2 sentences labelled without the cache, median of `--repeats`.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

from common import reuse_or_run, save_results
from zskd.black_box_teacher import EndpointOptions
from zskd.distill import DistillConfig, distill
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.serve import ServeConfig, build_app
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher
from zskd.teacher_options import TeacherOptions, load_teacher


def serve(teacher: Teacher, port: int):
    """`zskd serve`'s application for `teacher` on a loopback `port`, in a background thread, and its URL (a fixed
    port: the URL is part of the run's configuration and of the label cache's key)."""
    import uvicorn

    config = ServeConfig(model="teacher", port=port)
    server = uvicorn.Server(uvicorn.Config(build_app(teacher, config), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():  # uvicorn gave up (the port taken, say) and said why on stderr
            raise SystemExit(f"could not serve the teacher on 127.0.0.1:{port}: pick another --port")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/predict"


def median_seconds(label, texts: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        label(texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default="runs/teachers/sst2")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="inputs per request")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--transfer-size", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mse-centred", action="store_true", help="both runs match centred logits (a local "
                                                                    "teacher's then carry what the endpoint's do)")
    parser.add_argument("--raw-scores", action="store_true", help="the endpoint answers logits (--endpoint-raw-scores) "
                        "instead of probabilities")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--runs-dir", default="runs/bench/remote-teacher")
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/remote_teacher.json")
    args = parser.parse_args()

    teacher = Teacher.from_pretrained(args.teacher, bf16=False)
    server, url = serve(teacher, args.port)
    options = EndpointOptions(batch_size=args.batch_size, concurrency=args.concurrency, raw_scores=args.raw_scores)
    remote = load_teacher(TeacherOptions(teacher_url=url, endpoint=options), pairs=False,
                          label_names=teacher.label_names)
    texts = load_split(get_task(args.task), "train", args.data_root).texts[: args.texts]
    local_s = median_seconds(teacher.logits, texts, args.repeats)
    remote_s = median_seconds(remote.logits, texts, args.repeats)
    rows = [["in-process", len(texts), f"{local_s:.2f}", f"{len(texts) / local_s:.0f}", "1.00x"],
            [f"HTTP, {args.batch_size} a request, {args.concurrency} in flight", len(texts), f"{remote_s:.2f}",
             f"{len(texts) / remote_s:.0f}", f"{local_s / remote_s:.2f}x"]]
    throughput = markdown_table(["teacher", "texts", "median s", "texts/s", "speed"], rows)

    results, distill_rows = [], []
    for where in ("in-process", "http"):
        kind = ("-centred" if args.mse_centred else "") + ("-raw" if args.raw_scores and where == "http" else "")
        # in process: the label cache every run of this teacher shares; over HTTP: one per kind of answer
        cache_dir = DistillConfig.cache_dir if where == "in-process" else str(Path(args.runs_dir) / f"cache-http{kind}")
        out = Path(args.runs_dir) / f"{args.task}-{where}{kind}-s{args.seed}"
        # in float32 on both sides, as the server labels: the runs differ only in where the labels come from
        source = dict(teacher=args.teacher, teacher_bf16=False) if where == "in-process" else \
            dict(teacher_url=url, student_base=args.teacher, endpoint=options)
        config = DistillConfig(out=str(out), eval_task=args.task, steps=args.steps, transfer_size=args.transfer_size,
                               seed=args.seed, cache_dir=cache_dir,
                               data_root=args.data_root, mse_centred=args.mse_centred, **source)
        report = reuse_or_run(out, config, lambda: distill(config))
        e = report["eval"]
        results.append({"teacher": where, "report": report})
        distill_rows.append([where, e["teacher"]["task_metric"], e["student"]["task_metric"], e["percent_of_teacher"],
                             e["agreement"], report["transfer_seconds"], report.get("teacher_cost", "")])
    server.should_exit = True
    table = markdown_table(["teacher", "teacher score", "student", "% of teacher", "agreement", "transfer s",
                            "requests"], distill_rows)
    machine = machine_description()
    print(throughput, "\n", table, f"\n\n{machine}", sep="\n")
    save_results(args.json, "remote_teacher", machine, args=vars(args), results=results,
                 table=throughput + "\n\n" + table)


if __name__ == "__main__":
    main()
