"""A load test of `zskd serve` on loopback: requests a second and latency percentiles under concurrent clients,
with malformed and oversized requests mixed in, and a check that the answers are still right afterwards.

    python benchmarks/serve_load.py --model runs/bench/embedding-guess/sst2-random-bilstm-s0
    python benchmarks/serve_load.py --model DIR --onnx --clients 8 --seconds 30 --bad 1000

The service runs in its own process (`zskd serve`); `--clients` threads each send single-sentence requests (SST-2
dev sentences) back to back for `--seconds`; `--bad` malformed, wrongly typed and oversized requests are spread
among them. Reported: good requests a second, p50 and p99 latency (ms), the status codes of the bad ones, and
whether the labels served at the end equal the student's own.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from common import eval_inputs, save_results
from zskd.report import markdown_table
from zskd.runinfo import machine_description

BAD_BODIES = (b"{not json", b'{"inputs": "a text, not a list"}', b'{"texts": ["a"]}', b'{"inputs": [{"text": "x"}]}',
              b'{"inputs": [' + b'"a",' * 300 + b'"a"]}', b'{"inputs": ["' + b"x" * 2_000_000 + b'"]}')


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError) as error:  # a 413 sent before a 2 MB body was all uploaded
        return f"connection closed ({type(getattr(error, 'reason', error)).__name__})", b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="student directory")
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bad", type=int, default=1000, help="malformed or oversized requests mixed in")
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/serve_load.json")
    args = parser.parse_args()

    texts = eval_inputs("sst2", args.data_root)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "zskd.cli", "serve", "--model", args.model, "--port", str(port)]
    server = subprocess.Popen(command + (["--onnx"] if args.onnx else []), stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        latencies, statuses, lock = [], Counter(), threading.Lock()
        bad_each = args.bad // args.clients
        deadline = time.time() + args.seconds

        def client(number: int) -> None:
            sent_bad, i = 0, number
            while time.time() < deadline or sent_bad < bad_each:
                if sent_bad < bad_each and i % 3 == 0:  # one request in three is bad until this client's share is out
                    code, _ = post(url + "/predict", BAD_BODIES[sent_bad % len(BAD_BODIES)])
                    sent_bad += 1
                    with lock:
                        statuses[code] += 1
                elif time.time() < deadline:
                    start = time.perf_counter()
                    code, _ = post(url + "/predict", json.dumps({"inputs": [texts[i % len(texts)]]}).encode())
                    with lock:
                        latencies.append((time.perf_counter() - start) * 1000)
                        statuses[f"good {code}"] += 1
                i += args.clients

        started = time.time()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        sample = texts[:64]
        code, body = post(url + "/predict", json.dumps({"inputs": sample}).encode())
        served = [answer[0]["label"] for answer in json.loads(body)]
    finally:
        server.terminate()
        stopped = server.wait(timeout=60)
    from zskd.export import OnnxStudent
    from zskd.students import load_student

    model = OnnxStudent(args.model) if args.onnx else load_student(args.model)
    right = served == [p["label"] for p in model.predict(sample)]
    quantiles = statistics.quantiles(latencies, n=100)
    good = sum(v for k, v in statuses.items() if str(k).startswith("good"))
    rows = [[args.clients, f"{good / elapsed:.1f}", f"{quantiles[49]:.1f}", f"{quantiles[98]:.1f}", good,
             ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str) if not str(k).startswith("good")),
             "yes" if right else "NO", "graceful (SIGTERM re-raised)" if stopped == -15 else stopped]]
    table = markdown_table(["clients", "good requests/s", "p50 ms", "p99 ms", "good requests", "bad requests answered",
                            "labels right after", "exit on SIGTERM"], rows)
    machine = machine_description()
    print(table, f"\n{'ONNX Runtime' if args.onnx else 'PyTorch'} student {args.model}; {machine}")
    save_results(args.json, "serve_load", machine, args=vars(args), statuses={str(k): v for k, v in statuses.items()},
                 requests_per_second=good / elapsed, p50_ms=quantiles[49], p99_ms=quantiles[98], right=right,
                 table=table)


if __name__ == "__main__":
    main()
