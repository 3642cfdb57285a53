"""Teachers known only by their answers: an HTTP endpoint, or a Python function, that returns class probabilities.

    zskd distill --teacher-url http://localhost:8080/predict --eval-task sst2 --out runs/sst2-remote
    TOKEN=... zskd distill --teacher-url https://my.host/predict --endpoint-token-env TOKEN ...
    zskd distill --teacher-function my_module:classify --teacher-labels negative,positive ...

The endpoint speaks the text-classification JSON of Hugging Face inference servers: a request
`{"inputs": [...], "parameters": {"top_k": null}}` (a sentence pair is `{"text": a, "text_pair": b}`), an answer
with one list per input of `{"label", "score"}` objects covering every label. A function receives a list of inputs
(strings, or (a, b) tuples) and returns the same lists, or an [N, K] array of probabilities in `--teacher-labels`
order. Class order is `--teacher-labels`, else the labels of the first answer, sorted. With `--endpoint-raw-scores`
the scores are the teacher's logits (the endpoint is asked with `function_to_apply: none`), and the student fits them
as it would in process; from probabilities it gets logits only up to a constant per input (see `logits`).

Labelling survives a real endpoint: `concurrency` requests in flight, each of `batch_size` inputs, started at most
`rate_limit` a second; a timeout, a dropped connection, a 429 or a 5xx is retried up to `retries` times with
exponential backoff and jitter (a 429's Retry-After is honoured); `max_calls` bounds the requests sent. The label
cache stores each chunk of answers as it completes (one chunk is the requests in flight), so a crash loses at most
those and a rerun pays for nothing twice. The student is built on a separate base (`--student-base`: tokenizer,
embeddings and, for the `transformer` student, layers), since these teachers have none to offer.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from zskd.config import option
from zskd.data import DataError, TextInput
from zskd.resources import ResourceError

Answer = list[list[dict]] | np.ndarray  # per input, {"label", "score"} for every label; or [N, K] probabilities


@dataclass
class EndpointOptions:
    batch_size: int = option(32, "inputs per request")
    concurrency: int = option(4, "requests in flight at once")
    timeout: float = option(30.0, "seconds before a request is abandoned (and retried)")
    retries: int = option(6, "retries of a request after a timeout, a dropped connection, a 429 or a 5xx, with "
                             "exponential backoff and jitter")
    backoff: float = option(0.5, "seconds before the first retry; doubled at each further one (at most 30)")
    rate_limit: float = option(0.0, "most requests started per second (0: no limit)")
    token_env: str | None = option(None, "environment variable holding a bearer token for the endpoint (a token is "
                                         "never taken from the command line)")
    raw_scores: bool = option(False, "the answers' scores are the teacher's logits: the endpoint is asked for them "
                                     "(function_to_apply none, honoured by transformers' pipeline, Hugging Face "
                                     "endpoints and zskd serve) and a function returns them; the student then fits "
                                     "the logits as in process, where probabilities fix them only up to a constant")


class TransientError(Exception):
    """A failure worth retrying: a timeout, a dropped connection, a 429 or a 5xx."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class JsonEndpoint:
    """POSTs JSON to `url` (with a bearer token from the environment variable `token_env`) and returns the JSON
    answer; timeouts, dropped connections, 429 and 5xx raise `TransientError`, other HTTP errors `ResourceError`."""

    def __init__(self, url: str, timeout: float, token_env: str | None = None):
        self.url, self.timeout = url, timeout
        self.headers = {"Content-Type": "application/json"}
        if token_env:
            token = os.environ.get(token_env)
            if not token:
                raise DataError(f"--endpoint-token-env {token_env}: the environment variable is not set; export it "
                                "with the endpoint's token")
            self.headers["Authorization"] = f"Bearer {token}"

    def post(self, payload: dict):
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=self.headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:
                retry_after = error.headers.get("Retry-After")
                raise TransientError(f"HTTP {error.code}",
                                     float(retry_after) if retry_after and retry_after.isdigit() else None) from None
            raise ResourceError(f"the teacher endpoint {self.url} answered HTTP {error.code} {error.reason}"
                                f"{': check the token in --endpoint-token-env' if error.code in (401, 403) else ''}"
                                ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from None


class EndpointScorer(JsonEndpoint):
    """A batch of inputs -> a text-classification endpoint's answer (Hugging Face's JSON); with `raw_scores`, the
    logits (`function_to_apply: none`) instead of probabilities."""

    def __init__(self, url: str, timeout: float, token_env: str | None = None, raw_scores: bool = False):
        super().__init__(url, timeout, token_env)
        self.parameters = {"top_k": None, **({"function_to_apply": "none"} if raw_scores else {})}

    def __call__(self, batch: Sequence[TextInput]) -> Answer:
        inputs = [{"text": x[0], "text_pair": x[1]} if isinstance(x, (tuple, list)) else x for x in batch]
        return self.post({"inputs": inputs, "parameters": self.parameters})


def function_scorer(spec: str) -> Callable[[Sequence[TextInput]], Answer]:
    """The function `module:function` names (the module importable from the working directory or the path)."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise DataError(f"--teacher-function {spec!r}: give module:function, e.g. my_teacher:classify")
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise DataError(f"--teacher-function {spec}: {error}") from None
    if not callable(function):
        raise DataError(f"--teacher-function {spec} is not a function")
    return function


def is_label_scores(answer: Answer) -> bool:
    """Whether an answer is, per input, a list of {label, score} objects (else it should be an array)."""
    return isinstance(answer, list) and len(answer) > 0 and isinstance(answer[0], list) and len(answer[0]) > 0 \
        and isinstance(answer[0][0], dict)


class BlackBoxTeacher:
    """A teacher seen only through `score` (a batch of inputs -> its answer): `logits` are the log-probabilities it
    answers, labelled with `EndpointOptions`' concurrency, retries, rate limit and `max_calls` budget. Tokenizer and
    embeddings come from `base` (a local `Teacher` of the student base), for building the student only."""

    white_box = False  # answers only: the methods that need weights refuse it

    def __init__(self, score: Callable[[Sequence[TextInput]], Answer], identity: str, base,
                 options: EndpointOptions | None = None, label_names: list[str] | None = None, max_calls: int = 0):
        self.score, self.identity, self.base = score, identity, base
        self.options = options or EndpointOptions()
        self.max_calls = max_calls
        self.bf16 = False
        self.inputs_labelled = 0
        self.label_chunk_size = self.options.batch_size * self.options.concurrency  # the requests in flight
        self.cost = {"requests": 0, "texts": 0, "retries": 0, "failures": 0, "seconds": 0.0}
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._label_names = label_names
        if self._label_names is None:  # learn them from a first answer
            self._label_names = sorted(self._answered(["What are the labels?"], lambda answer, count: None)[1])
            if not self._label_names:
                raise DataError(f"{identity} answers without label names: pass --teacher-labels in its column order")

    # what the student is built from: the base's
    @property
    def tokenizer(self):
        return self.base.tokenizer

    @property
    def max_length(self) -> int:
        return self.base.max_length

    @property
    def model(self):
        return self.base.model

    @property
    def embedding_matrix(self):
        return self.base.embedding_matrix

    def encode(self, inputs: Sequence[TextInput]) -> dict[str, list[list[int]]]:
        return self.base.encode(inputs)

    @property
    def label_names(self) -> list[str]:
        return list(self._label_names)

    @property
    def num_labels(self) -> int:
        return len(self._label_names)

    def num_parameters(self) -> None:
        """Unknown: only answers come back."""
        return None

    def fingerprint(self) -> str:
        """The endpoint or function and its labels key the label cache: clear the cache (or use another
        --cache-dir) when the model behind them changes."""
        scores = "raw" if self.options.raw_scores else "centred"
        return hashlib.sha256(f"black-box|{scores}|{self.identity}|{','.join(self._label_names)}".encode()).hexdigest()

    def logits(self, inputs: Sequence[TextInput], progress: bool = False) -> np.ndarray:
        """[N, K] float32 logits, in the order of `inputs`: the scores answered with `raw_scores`; else the
        log-probabilities answered, centred on each input's mean. Probabilities fix logits only up to a constant per
        input; the log-probabilities' constant (minus the log-sum-exp) varies with the teacher's confidence and would
        be one more thing for the logit-MSE term to fit, where centred they are a local teacher's logits less their
        mean (the same softmax, so the same KL)."""
        started = time.perf_counter()
        size = self.options.batch_size
        batches = [list(inputs[start : start + size]) for start in range(0, len(inputs), size)]
        read = self.scores if self.options.raw_scores else self.probabilities
        with ThreadPoolExecutor(self.options.concurrency) as pool:
            answers = list(pool.map(lambda batch: self._answered(batch, read)[0], batches))
        self.inputs_labelled += len(inputs)
        self.cost["seconds"] = round(self.cost["seconds"] + time.perf_counter() - started, 3)
        if not answers:
            return np.zeros((0, self.num_labels), np.float32)
        if self.options.raw_scores:  # the teacher's own logits
            return np.concatenate(answers).astype(np.float32)
        log_probabilities = np.log(np.clip(np.concatenate(answers), 1e-12, 1.0))
        return (log_probabilities - log_probabilities.mean(-1, keepdims=True)).astype(np.float32)

    def probabilities(self, answer: Answer, count: int) -> np.ndarray:
        """[count, K] probabilities, in `label_names` order, from an answer; each row normalised to sum to 1."""
        rows = self.scores(answer, count)
        if (rows < 0).any():
            raise ResourceError("the teacher answered scores that are not probabilities (negative): if they are "
                                "logits, pass --endpoint-raw-scores")
        return rows / np.clip(rows.sum(1, keepdims=True), 1e-12, None)

    def scores(self, answer: Answer, count: int) -> np.ndarray:
        """[count, K] scores, in `label_names` order, from an answer, as answered."""
        if not is_label_scores(answer):
            try:
                rows = np.asarray(answer, dtype=np.float64)
            except (TypeError, ValueError):
                raise ResourceError(f"the teacher answered {str(answer)[:200]!r}: expected, per input, a list of "
                                    "{label, score} objects, or an [N, K] array of probabilities") from None
            if rows.shape != (count, self.num_labels):
                raise ResourceError(f"the teacher answered an array of shape {rows.shape} for {count} inputs and "
                                    f"{self.num_labels} labels ({', '.join(self._label_names)})")
        else:
            if len(answer) != count:
                raise ResourceError(f"the teacher answered {len(answer)} results for {count} inputs")
            rows = np.zeros((count, self.num_labels))
            column = {name: i for i, name in enumerate(self._label_names)}
            for i, scores in enumerate(answer):
                seen = {str(item["label"]): float(item["score"]) for item in scores}
                missing = set(column) - set(seen)
                if missing:
                    raise ResourceError(f"the teacher's answer lacks label(s) {', '.join(sorted(missing))}: it must "
                                        "score every label (top_k null), or pass --teacher-labels to match its names")
                rows[i] = [seen[name] for name in self._label_names]
        if not np.isfinite(rows).all():
            raise ResourceError("the teacher answered scores that are not numbers (NaN or infinite)")
        return rows

    def _answered(self, batch: list[TextInput], read: Callable) -> tuple[np.ndarray | None, list[str]]:
        """`read(answer, len(batch))` of the first answer that reads, and the labels it named; retried as the
        options say."""
        for attempt in range(self.options.retries + 1):
            self._start_request()
            try:
                answer = self.score(batch)
                result = read(answer, len(batch))
                labels = [str(item["label"]) for item in answer[0]] if is_label_scores(answer) else []
                with self._lock:
                    self.cost["texts"] += len(batch)
                return result, labels
            except (TransientError, TimeoutError, ConnectionError) as error:
                last = error
                with self._lock:
                    self.cost["failures"] += 1
                if attempt == self.options.retries:
                    break
                with self._lock:
                    self.cost["retries"] += 1
                delay = min(30.0, self.options.backoff * 2 ** attempt) * random.uniform(0.5, 1.5)
                time.sleep(max(delay, getattr(error, "retry_after", None) or 0.0))
        raise ResourceError(f"the teacher failed {self.options.retries + 1} times in a row on one batch (last: "
                            f"{last}); the labels answered so far are cached: rerun to continue")

    def _start_request(self) -> None:
        """Counts the request against `max_calls` and waits for its turn under `rate_limit`."""
        with self._lock:
            if self.max_calls and self.cost["requests"] >= self.max_calls:
                raise DataError(f"--max-teacher-calls {self.max_calls} spent ({self.cost['texts']} inputs answered "
                                "in this process); the answers so far are cached: rerun with a larger budget")
            self.cost["requests"] += 1
            now = time.monotonic()
            start = max(now, self._next_start)
            if self.options.rate_limit > 0:
                self._next_start = start + 1.0 / self.options.rate_limit
        time.sleep(start - now)
