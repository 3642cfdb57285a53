"""A teacher behind HTTP against the same teacher in-process (issue 20): labelling throughput, and the student
distilled from each with the same recipe and seed.

    python benchmarks/remote_teacher.py                         # SST-2 teacher in runs/teachers/sst2, seed 0
    python benchmarks/remote_teacher.py --texts 4000 --steps 10000 --transfer-size 250000   # the default budget

The teacher is served on a loopback port by a small threaded server in this process, speaking Hugging Face's
text-classification JSON (`--teacher-url`); the remote student is built on the teacher's own tokenizer and
embeddings (`--student-base`), so that the two runs differ only in where the labels come from (log-probabilities
over HTTP, logits in-process: the same KL targets, a different logit-MSE target). Throughput: `--texts` SST-2
sentences labelled without the cache, median of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from common import reuse_or_run, save_results
from zskd.black_box_teacher import BlackBoxTeacher, EndpointOptions, EndpointScorer
from zskd.distill import DistillConfig, distill
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher


def serve(teacher: Teacher, port: int) -> tuple[ThreadingHTTPServer, str]:
    """A loopback text-classification endpoint for `teacher` on `port`, serving in a background thread, and its
    URL (a fixed port: the URL is part of the run's configuration and of the label cache's key)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = [(x["text"], x["text_pair"]) if isinstance(x, dict) else x for x in body["inputs"]]
            probabilities = torch.softmax(torch.from_numpy(teacher.logits(inputs)), -1).tolist()
            answer = [[{"label": name, "score": p} for name, p in zip(teacher.label_names, row)]
                      for row in probabilities]
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/predict"


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
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--runs-dir", default="runs/bench/remote-teacher")
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/remote_teacher.json")
    args = parser.parse_args()

    teacher = Teacher.from_pretrained(args.teacher, bf16=False)
    server, url = serve(teacher, args.port)
    options = EndpointOptions(batch_size=args.batch_size, concurrency=args.concurrency)
    remote = BlackBoxTeacher(EndpointScorer(url, options.timeout), url, base=teacher, options=options,
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
        out = Path(args.runs_dir) / f"{args.task}-{where}{'-centred' if args.mse_centred else ''}-s{args.seed}"
        # in float32 on both sides, as the server labels: the runs differ only in where the labels come from
        source = dict(teacher=args.teacher, teacher_bf16=False) if where == "in-process" else \
            dict(teacher_url=url, student_base=args.teacher, endpoint=options)
        config = DistillConfig(out=str(out), eval_task=args.task, steps=args.steps, transfer_size=args.transfer_size,
                               seed=args.seed, cache_dir=str(Path(args.runs_dir) / f"cache-{where}"),
                               data_root=args.data_root, mse_centred=args.mse_centred, **source)
        report = reuse_or_run(out, config, lambda: distill(config))
        e = report["eval"]
        results.append({"teacher": where, "report": report})
        distill_rows.append([where, e["teacher"]["task_metric"], e["student"]["task_metric"], e["percent_of_teacher"],
                             e["agreement"], report["transfer_seconds"], report.get("teacher_cost", "")])
    server.shutdown()
    table = markdown_table(["teacher", "teacher score", "student", "% of teacher", "agreement", "transfer s",
                            "requests"], distill_rows)
    machine = machine_description()
    print(throughput, "\n", table, f"\n\n{machine}", sep="\n")
    save_results(args.json, "remote_teacher", machine, args=vars(args), results=results,
                 table=throughput + "\n\n" + table)


if __name__ == "__main__":
    main()
