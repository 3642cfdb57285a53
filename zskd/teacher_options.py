"""Which teacher a command labels with: the options `zskd distill` and `zskd generate` share, and the one loader.

A teacher is a local transformers classifier (`--teacher`), or one known only by its answers: an HTTP endpoint
(`--teacher-url`), a Python function (`--teacher-function`), a causal LM in this process (`--teacher-lm`) or an
OpenAI-compatible server (`--teacher-openai`). Exactly one is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from zskd.black_box_teacher import BlackBoxTeacher, EndpointOptions, EndpointScorer, function_scorer
from zskd.config import option, require
from zskd.data import DataError
from zskd.generation import LanguageModel
from zskd.lm_teacher import LanguageModelScorer, OpenAIScorer
from zskd.teacher import Teacher

SOURCE_FLAGS = {"teacher": "--teacher", "teacher_url": "--teacher-url", "teacher_function": "--teacher-function",
                "teacher_lm": "--teacher-lm", "teacher_openai": "--teacher-openai"}


@dataclass
class TeacherOptions:
    """The teacher: one of `SOURCE_FLAGS`, and how to ask one known by its answers."""

    teacher: str = option("", "teacher model directory or hub id")
    teacher_url: str | None = option(None, "instead of --teacher: an HTTP endpoint speaking Hugging Face's "
                                           "text-classification JSON (only its answers are used)")
    teacher_function: str | None = option(None, "instead of --teacher: module:function, a Python function from a "
                                                "list of inputs to class probabilities")
    teacher_lm: str | None = option(None, "instead of --teacher: a causal LM (packaged smollm2-135m, a directory or "
                                          "a hub id) as a zero-shot teacher, from a prompt and one word per label")
    teacher_openai: str | None = option(None, "instead of --teacher: an OpenAI-compatible server's base URL (e.g. "
                                              "http://localhost:8080/v1) whose LM answers a prompt, as --teacher-lm")
    teacher_model: str | None = option(None, "--teacher-openai: the model name to ask for")
    teacher_completions: bool = option(False, "--teacher-openai: /completions with batches of prompts instead of "
                                              "/chat/completions with one input a request")
    teacher_samples: int = option(10, "--teacher-openai: sampled answers counted where the server returns no "
                                      "log-probabilities")
    teacher_prompt: str | None = option(None, "--teacher-lm/--teacher-openai: the prompt, with {text} ({text_pair} "
                                              "for pairs; {labels} lists the words; default: zskd/lm_teacher.py)")
    teacher_verbalisers: str | None = option(None, "--teacher-lm/--teacher-openai: the word the LM answers for each "
                                                   "label, comma-separated (default: the label names)")
    teacher_labels: str | None = option(None, "a teacher known by its answers: the label names, comma-separated, in "
                                              "class order (default: the first answer's, sorted; --teacher-lm needs "
                                              "them)")
    max_teacher_calls: int = option(0, "a teacher known by its answers: most requests (batches) to send (0: no "
                                       "limit)")
    endpoint: EndpointOptions = option(help="a teacher known by its answers (--teacher-url, --teacher-function, "
                                            "--teacher-lm): how requests are sent", factory=EndpointOptions)


def teacher_source(options: TeacherOptions) -> str:
    """The flag that names the teacher, once the teacher options pass their checks."""
    sources = [flag for name, flag in SOURCE_FLAGS.items() if getattr(options, name)]
    if len(sources) != 1:
        got = f"; got {' '.join(sources)}" if sources else ""
        raise DataError("give one teacher (--teacher DIR, --teacher-url URL, --teacher-function module:function, "
                        f"--teacher-lm LM or --teacher-openai URL){got}")
    if options.teacher:
        for flag, value in (("--teacher-labels", options.teacher_labels),
                            ("--max-teacher-calls", options.max_teacher_calls)):
            if value:
                raise DataError(f"{flag} is for a teacher known by its answers (--teacher-url, --teacher-function, "
                                "--teacher-lm, --teacher-openai); a local --teacher gives its own")
    prompted = options.teacher_lm or options.teacher_openai
    if not prompted and (options.teacher_prompt or options.teacher_verbalisers):
        raise DataError("--teacher-prompt and --teacher-verbalisers are for --teacher-lm or --teacher-openai")
    if prompted and options.endpoint.raw_scores:
        raise DataError("--endpoint-raw-scores is for --teacher-url or --teacher-function: a prompted LM answers "
                        "probabilities")
    if prompted and not options.teacher_labels:
        raise DataError(f"{sources[0]} needs the label names: pass --teacher-labels, e.g. negative,positive")
    if options.teacher_openai and not options.teacher_model:
        raise DataError("--teacher-openai needs --teacher-model, the name of the model the server serves")
    words, labels = (len(x.split(",")) if x else 0 for x in (options.teacher_verbalisers, options.teacher_labels))
    if words and words != labels:
        raise DataError(f"--teacher-verbalisers gives {words} words for {labels} --teacher-labels: give one per label")
    endpoint = options.endpoint
    for flag, value, least in (("batch-size", endpoint.batch_size, 1), ("concurrency", endpoint.concurrency, 1),
                               ("retries", endpoint.retries, 0)):
        if value < least:
            raise DataError(f"--endpoint-{flag} {value} must be at least {least}")
    if endpoint.timeout <= 0 or endpoint.rate_limit < 0 or endpoint.backoff < 0:
        raise DataError("--endpoint-timeout must be positive; --endpoint-rate-limit and --endpoint-backoff must not "
                        "be negative")
    for name, least in (("max_teacher_calls", 0), ("teacher_samples", 1)):
        require(name, getattr(options, name), getattr(options, name) >= least, f"must be at least {least}")
    return sources[0]


def load_teacher(options: TeacherOptions, *, pairs: bool, student_base: str | None = None, max_length: int = 128,
                 bf16: bool | None = None, runtime: str = "torch", cache_dir: str | None = None,
                 trust_remote_code: bool = False, device: torch.device | None = None,
                 label_names: list[str] | None = None) -> Teacher | BlackBoxTeacher:
    """The local classifier `--teacher` names (run by `runtime`), or the one known by its answers. A student is
    built on the latter's `student_base` (tokenizer, embeddings): None where no student is built from it.
    `label_names` (the class order to read answers in) overrides `--teacher-labels`."""
    if options.teacher:
        teacher = Teacher.from_pretrained(options.teacher, trust_remote_code=trust_remote_code, max_length=max_length,
                                          bf16=bf16, device=device)
        return teacher.with_runtime(runtime, cache_dir)
    if label_names is None and options.teacher_labels:
        label_names = [x.strip() for x in options.teacher_labels.split(",")]
    endpoint = options.endpoint
    if options.teacher_url:
        score = EndpointScorer(options.teacher_url, endpoint.timeout, endpoint.token_env, endpoint.raw_scores)
        identity = options.teacher_url
    elif options.teacher_function:
        score, identity = function_scorer(options.teacher_function), options.teacher_function
    else:
        verbalisers = [x.strip() for x in options.teacher_verbalisers.split(",")] if options.teacher_verbalisers \
            else label_names
        if options.teacher_lm:
            lm = LanguageModel.load(options.teacher_lm, trust_remote_code, bf16=False)
            score = LanguageModelScorer(lm, verbalisers, options.teacher_prompt, pairs)
        else:
            score = OpenAIScorer(options.teacher_openai, options.teacher_model, verbalisers, options.teacher_prompt,
                                 pairs, not options.teacher_completions, options.teacher_samples, endpoint.timeout,
                                 endpoint.token_env)
            if not options.teacher_completions:  # a request per input: a retried batch never pays for one twice
                endpoint = dataclasses.replace(endpoint, batch_size=1)
        identity = (f"lm:{options.teacher_lm or options.teacher_openai + '|' + options.teacher_model}|{score.prompt}|"
                    f"{','.join(verbalisers)}")
    base = None if student_base is None else Teacher.from_pretrained(
        student_base, trust_remote_code=trust_remote_code, max_length=max_length, bf16=False)
    return BlackBoxTeacher(score, identity, base, endpoint, label_names, options.max_teacher_calls)
