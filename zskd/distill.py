"""The one distillation loop: a teacher and a transfer set go in, a small student comes out.

    zskd distill --teacher runs/teachers/sst2 --method ood --student bilstm --eval-task sst2 --out runs/sst2-ood
    accelerate launch -m zskd.cli distill ...        # the same on several processes or GPUs, unchanged
    accelerate launch --cpu --num_processes 2 -m zskd.cli distill ...   # two CPU processes (gloo), as tested

`distill` is the recipe, in four steps: the method's transfer set, labelled by the teacher (cached), with a held-out
slice (`label_transfer_set`); a student whose vocabulary is pruned to the tokens the set uses, initialised from the
teacher (`build_student`); training on the teacher's soft labels with AdamW, warm-up and linear decay, plus the
objectives the method and options add (`train`); the report, model card and one rename (`finish`).
Every `eval_every` steps the student's agreement with the teacher on the held-out slice picks the best checkpoint
(never the task's labels: this is zero-shot), and the task metric on labelled data is logged for reporting.
Checkpoints every `checkpoint_every` steps in `<out>.partial/`; the same command resumes there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from zskd import losses
from zskd.batching import length_grouped_batches
from zskd.checkpoint import load_checkpoint, save_checkpoint
from zskd.config import append_jsonl, check_numbers, config_dict, load_config, option, write_json
from zskd.data import DataError, Examples, check_share, read_labelled, segment_ids
from zskd.evaluate import agreement, best_constant_answer, classification_metrics, teacher_comparison
from zskd.hard_rows import HardRows
from zskd.labelling import label_with_teacher
from zskd.methods import METHODS, Batch, Method, Objective, Setup, TransferSet
from zskd.methods.adversarial import AdversarialOptions
from zskd.methods.embedding_guess import EmbeddingGuessOptions
from zskd.methods.ood import augment_kinds, augmented, read_sentences
from zskd.methods.pairs import DEFAULT_PAIR_KINDS, PAIR_KINDS, pair_profile
from zskd.objectives import inputs_of, logit_layer, shared_objectives
from zskd.report import model_card
from zskd.resources import MINILM
from zskd.rundir import RunDirectory
from zskd.runinfo import machine_description, peak_memory_mib, versions
from zskd.schedule import linear_warmup_decay
from zskd.students import (
    STUDENTS,
    Student,
    create_student,
    default_student,
    fit_to_budget,
    load_student,
    parse_student_options,
    widths_to_fit,
)
from zskd.students.base import build_vocabulary
from zskd.tasks import TASKS, get_task, load_split
from zskd.teacher import Teacher, check_runtime
from zskd.teacher_options import TeacherOptions, load_teacher, teacher_source

log = logging.getLogger(__name__)


@dataclass
class DistillConfig(TeacherOptions):
    """Every option of a distillation run; each is a flag of `zskd distill` and a key of its YAML recipes. The teacher's
    come first (`TeacherOptions`)."""

    out: str = option("", "output student directory")
    student_base: str | None = option(None, "a teacher known by its answers: the model whose tokenizer and "
                                            "embeddings the student starts from (default: the packaged MiniLM-L6)")
    method: str = option("ood", f"distillation method: {', '.join(METHODS)}")
    student: str | None = option(None, f"student: {', '.join(STUDENTS)} (default: pair-bilstm when the teacher reads "
                                       "pairs, else bilstm)")
    student_options: str | dict | None = option(None, "student config, e.g. hidden_size=256,embedding_dim=96 (in YAML, "
                                                     "also a mapping)")
    ood: str | None = option(None, "out-of-domain corpus files, comma-separated (method ood, adversarial: default the "
                                   "data root's; method generate: added to the generated texts)")
    generated: str | None = option(None, "method generate: the file `zskd generate` wrote")
    few_shot: str | None = option(None, "low-data: a labelled file of a few examples; adds cross-entropy on them")
    few_shot_text_col: str = option("sentence", "text column of --few-shot")
    few_shot_label_col: str = option("label", "label column of --few-shot")
    few_shot_weight: float = option(1.0, "weight of the cross-entropy on the --few-shot examples")
    few_shot_transfer: bool = option(True, "low-data: the --few-shot texts and --augment variants of each lead the "
                                           "transfer set, labelled by the teacher like the rest: real task text")
    indomain_data: str | None = option(None, "method indomain: a file of the task's unlabelled text")
    eval_task: str | None = option(None, "named task to report the task metric on (never used for selection)")
    eval_split: str | None = option(None, "split(s) of --eval-task, e.g. dev or dev+test")
    eval_data: str | None = option(None, "labelled file to report the task metric on")
    eval_text_col: str = option("sentence", "text column of --eval-data / --indomain-data")
    eval_text_col2: str | None = option(None, "second text column, for sentence pairs")
    eval_label_col: str = option("label", "label column of --eval-data")
    pairs: bool | None = option(None, "the teacher reads sentence pairs (default: from the eval data, else from "
                                      "what a `zskd teacher-train` teacher was trained on)")
    data_root: str | None = option(None, "benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    cache_dir: str = option("runs/cache/labels", "teacher label cache, shared across runs")
    transfer_size: int = option(250000, "inputs in the transfer set")
    ood_nearest: float = option(1.0, "method generate with --ood: the fraction of the out-of-domain sentences kept, "
                                     "those that read most like the generated texts (Moore-Lewis); 1 keeps all")
    pool_factor: int = option(2, "ood: candidates labelled per kept input, for class balancing")
    augment: int | None = option(None, "ood, generate, indomain: extra variants per sentence, of --augment-kinds in "
                                       "turn (indomain pairs: one side perturbed, or the two swapped; "
                                       "zskd/methods/pairs.py); default 4, out-of-domain pairs 2, indomain sentences "
                                       "16")
    augment_kinds: str | None = option(None,
                                       "ood, generate, indomain: the variants, comma-separated, in turn (default "
                                       "part,near-copy,other-words; generate's single texts with --few-shot "
                                       "part,near-copy,other-words,other-topic): part (a span), near-copy (words "
                                       "dropped, replaced, swapped), question (a yes/no or wh- question in its words), "
                                       "other-words (3 in 10 of its lower-case words replaced by their nearest GloVe "
                                       "neighbours; needs the packaged GloVe), negated (\"not\" added or removed), "
                                       "joined (spans of it and of another sentence joined by \"but\", \"although\", "
                                       "...), other-topic (about half its words outside the set's 300 most frequent "
                                       "replaced by other such words of the same capitalisation and ending)")
    balance: bool = option(True, "ood: balance the teacher's predicted classes")
    balance_by_kind: bool = option(True, "ood, pairs: balance the classes within each pair kind, so that how a pair "
                                         "was made does not tell the student the teacher's class")
    rare_class_variants: int = option(16, "ood, single sentences: for each rare class (see --rare-class-fraction), up "
                                          "to this many variants of each input the teacher gives it, labelled and "
                                          "added to the pool before balancing (0: none)")
    rare_class_fraction: float = option(0.1, "ood, --rare-class-variants: a class is rare when the teacher gives it "
                                             "less than this fraction of its even share of --transfer-size")
    contrast_inputs: int = option(0, "ood, single sentences: this many inputs joining two pool inputs the teacher "
                                     "gives different classes with confidence (\"A , but B\", \"although A , B\", "
                                     "...), labelled and added to the pool before balancing (0: none)")
    word_inputs: int = option(0, "ood, single sentences: the corpora's this many most frequent words, each alone as "
                                 "an input, join the pool (the teacher's reading of single words; 0: none)")
    pair_kinds: str = option(",".join(DEFAULT_PAIR_KINDS), "ood, pairs: the kinds of second sentence, comma-"
                                                           "separated, taken in turn (zskd/methods/pairs.py; also "
                                                           "similar, spliced, other-words)")
    min_words: int = option(4, "shortest input, in words (pairs: per sentence)")
    max_words: int = option(40, "longest input, in words (pairs: per sentence)")
    max_parameters: int = option(0, "the student's size budget: its width options that --student-options leaves "
                                    "unset scaled together to the largest shape within it (0: the student's defaults)")
    max_vocab: int = option(0, "student vocabulary: the most frequent transfer-set tokens (0: all of them)")
    vocab_from: str | None = option(None, "text files, comma-separated, whose tokens also join the student vocabulary "
                                          "(initialised from the teacher): fewer [UNK] after a small transfer set")
    steps: int = option(10000, "student optimisation steps")
    batch_size: int = option(64, "inputs per step")
    lr: float | None = option(None, "peak learning rate (default: 4e-3 bilstm, 2e-3 cnn, 1e-4 transformer)")
    warmup_ratio: float = option(0.05, "fraction of steps with linear warm-up")
    weight_decay: float = option(0.01, "AdamW weight decay")
    temperature: float = option(2.0, "softmax temperature of the KL term")
    kl_weight: float = option(1.0, "weight of KL(teacher || student)")
    mse_weight: float = option(1.0, "weight of the logit MSE (added to the KL term)")
    mse_centred: bool = option(False, "logit MSE on each input's logits less their mean: what the softmax reads, and "
                                      "all a teacher known by its probabilities gives")
    hard_fraction: float = option(0.0, "share of each batch drawn again from the training rows the student matched "
                                       "worst at their last visit (by KL against the teacher; zskd/hard_rows.py)")
    own_text_fraction: float | None = option(None, "share of each batch drawn from the transfer set's own texts in the "
                                                  "task's register (the --few-shot texts, generate's texts, and their "
                                                  "variants) rather than walking the whole set with its out-of-domain "
                                                  "fill; default 0.25 for method generate with --few-shot (single "
                                                  "texts), else 0")
    class_weighting: float = option(0.0, "weigh each training row's loss by its teacher class's share of the transfer "
                                         "set to this power, negated: 0 off, 1 every class weighs the same in all")
    ema_decay: float | None = option(None, "decay of an exponential moving average of the student's weights, updated "
                                          "every step: the average is what is evaluated, kept and written. Default "
                                          "min(0.999, 1 - 10 / --steps), about the last tenth of a short run and the "
                                          "last 1,000 steps of a long one; 0 turns it off")
    hidden_weight: float = option(0.0, "weight of hidden-state MSE, for students that take hidden-state targets "
                                       "(transformer)")
    feature_weight: float = option(0.0, "weight of the loss that relates the inputs of a batch in the student's "
                                        "features (what its last layer reads) as in the teacher's (zskd/objectives.py; "
                                        "a local --teacher)")
    mixup_weight: float = option(0.0, "weight of the loss on inputs between the transfer set's: each two of a batch "
                                      "mixed word by word in embedding space, labelled by the teacher online (MixKD; "
                                      "zskd/objectives.py; a local --teacher, single sentences; 0: off)")
    mixup_every: int = option(1, "--mixup-weight: steps between mixed batches (each costs a teacher forward pass)")
    adversarial: AdversarialOptions = option(help="method adversarial (Rashid et al.): the generator that perturbs the "
                                                  "ood inputs online", factory=AdversarialOptions)
    embedding_guess: EmbeddingGuessOptions = option(help="method embedding-guess (AS-DFD, Ma et al.): pseudo-inputs "
                                                         "guessed in the teacher's embedding space",
                                                    factory=EmbeddingGuessOptions)
    heldout: int = option(4000, "transfer-set inputs held out to measure agreement")
    eval_every: int = option(500, "steps between evaluations")
    checkpoint_every: int = option(500, "steps between resumable checkpoints")
    max_length: int = option(128, "tokens per input")
    teacher_bf16: bool | None = option(None, "label under bfloat16 autocast (default: on a CPU with AMX, or an AMD "
                                             "with AVX512-BF16, where it is faster than float32)")
    teacher_runtime: str = option("torch", "what runs a local teacher to label: torch, onnx (ONNX Runtime; the graph "
                                           "exported once into <cache-dir>/onnx) or onnx-int8 (its int8 quantisation)")
    seed: int = option(0, "seed for everything: transfer set, initialisation, batches")
    restart: bool = option(False, "start again: delete the work an interrupted run left in <out>.partial (resuming "
                                  "it with other options is refused)")
    trust_remote_code: bool = option(False, "allow custom teacher code (off: safer)")




def load_eval_data(config: DistillConfig) -> tuple[Examples | None, str]:
    """The labelled data the task metric is reported on, and the metric's name."""
    if config.eval_task:
        task = get_task(config.eval_task)
        splits = (config.eval_split or task.eval_split).split("+")
        parts = [load_split(task, s, config.data_root) for s in splits]
        merged = Examples(sum((p.texts for p in parts), []),
                          sum((p.texts2 for p in parts), []) if task.is_pair else None,
                          sum((p.labels for p in parts), []), parts[0].label_names, "+".join(p.source for p in parts))
        return merged, task.metric
    if config.eval_data:
        return (read_labelled(config.eval_data, config.eval_text_col, config.eval_label_col, config.eval_text_col2),
                "accuracy")
    return None, "accuracy"


def distill(config: DistillConfig | None = None, stop_after_steps: int | None = None, **options):
    """Distil `config.teacher` into a new student saved at `config.out`; return (student, report).
    Options may be given as keywords instead of a config: `distill(teacher=..., method="ood", out=...)`.
    `stop_after_steps` ends early after a checkpoint (to test resuming) and returns (None, {})."""
    from accelerate import Accelerator

    config = config or load_config(DistillConfig, overrides=options)
    method = check_config(config)
    run = RunDirectory(config.out)
    started = time.time()
    accelerator = Accelerator()
    torch.manual_seed(config.seed)
    eval_examples, metric = load_eval_data(config)
    if config.pairs is None:
        pairs = eval_examples.is_pair if eval_examples is not None else trained_on_pairs(config.teacher)
        if pairs and eval_examples is None:
            log.info("%s was trained on sentence pairs (its run.json): making pairs (--no-pairs for single texts)",
                     config.teacher)
        config = dataclasses.replace(config, pairs=pairs)
    given = config
    config = with_run_defaults(config)
    derived = [k for k, v in dataclasses.asdict(given).items() if v is None and getattr(config, k) is not None]
    if config.hard_fraction + config.own_text_fraction >= 1:
        raise DataError(f"--hard-fraction {config.hard_fraction} and --own-text-fraction "
                        f"{config.own_text_fraction} leave no room in a batch for the walk over the transfer set: "
                        "keep their sum under 1")
    if config.pairs and config.word_inputs:
        raise DataError("--word-inputs adds single words, and this teacher reads sentence pairs: leave it out")
    if config.pairs and config.mixup_weight:
        raise DataError("--mixup-weight mixes single sentences, and this teacher reads sentence pairs: leave it out")
    if config.pairs and config.contrast_inputs:
        raise DataError("--contrast-inputs joins single sentences, and this teacher reads sentence pairs: leave it out")
    options = parse_student_options(config.student, config.student_options)  # bad options fail before labelling
    if config.max_parameters:
        widths_to_fit(config.student, options)
    teacher = load_teacher(config, pairs=config.pairs, student_base=config.student_base or MINILM.name,
                           max_length=config.max_length, bf16=config.teacher_bf16, runtime=config.teacher_runtime,
                           cache_dir=config.cache_dir, trust_remote_code=config.trust_remote_code,
                           device=accelerator.device)
    work = run.begin({k: v for k, v in config_dict(config).items() if k != "cache_dir"}, config.restart,
                     derived=derived)

    with accelerator.main_process_first():  # the others then read its labels from the cache
        transfer = label_transfer_set(config, method, teacher)
    setup = build_student(config, teacher, transfer, work, accelerator.is_main_process)
    objectives = [*shared_objectives(setup), *method.objectives(setup)]
    evaluation = Evaluation(transfer.heldout_inputs, transfer.heldout_labels, eval_examples, metric)
    trained = train(config, setup, objectives, torch.from_numpy(transfer.logits[transfer.train]), evaluation,
                    accelerator, stop_after_steps, own_rows=np.flatnonzero(transfer.train < transfer.own_texts))
    if trained is None:  # stopped early, or not the main process
        return None, {}
    return finish(config, run, setup, transfer, objectives, trained, eval_examples, metric, started)


def trained_on_pairs(teacher: str | None) -> bool:
    """Whether `teacher` is a directory `zskd teacher-train` wrote from sentence pairs (its run.json names a pair
    task or a second text column): a run given no eval data then still makes pairs for it."""
    record = Path(teacher) / "run.json" if teacher else None
    if record is None or not record.is_file():
        return False
    try:
        trained = json.loads(record.read_text()).get("config", {})
    except (OSError, ValueError, AttributeError):
        return False
    task = trained.get("task")
    return bool(trained.get("text_col2")) or (task in TASKS and TASKS[task].is_pair)


def with_run_defaults(config: DistillConfig) -> DistillConfig:
    """`config` with the options left to the run (None) set as a run sets them once it knows `pairs`: the student,
    `augment`, `ema_decay`, `own_text_fraction` and `augment_kinds`. What a run writes into its run.json, and what
    the benchmarks compare a finished run with."""
    if config.student is None:
        config = dataclasses.replace(config, student=default_student(bool(config.pairs)))
    if config.augment is None:
        config = dataclasses.replace(config, augment=default_augment(config))
    if config.ema_decay is None:
        config = dataclasses.replace(config, ema_decay=default_ema_decay(config))
    if config.own_text_fraction is None:
        config = dataclasses.replace(config, own_text_fraction=default_own_text_fraction(config))
    if config.augment_kinds is None:
        config = dataclasses.replace(config, augment_kinds=default_augment_kinds(config))
    return config


def default_augment_kinds(config: DistillConfig) -> str:
    """The variants when `--augment-kinds` is not given: a span, a perturbed copy and a copy in other words, in turn;
    for low-data `generate` (`low_data_generate`) the fourth is the text about another topic (its frame kept, its
    rarer words swapped), which widens the ~1,000 texts in the task's register beyond the topics the LM wrote about
    (k = 100 beside `--own-text-fraction 0.25`: +0.50 on the mean of six runs, TREC +0.20 and SST-2 +0.81 over 3
    seeds each; BENCHMARKS.md). Everywhere else the fourth is a second span: zero-shot `generate` (no `--few-shot`)
    moved within a seed with it (TREC +0.20, SST-2 -0.63), and no other method has been measured with it."""
    kinds = "part,near-copy,other-words"
    return kinds + ",other-topic" if low_data_generate(config) else kinds


def low_data_generate(config: DistillConfig) -> bool:
    """Whether `config` is `generate` on single texts with `--few-shot` examples: the low-data setting whose own
    defaults (`--own-text-fraction`, `--augment-kinds`) were measured there and only there."""
    return config.method == "generate" and not config.pairs and bool(config.few_shot)


def default_own_text_fraction(config: DistillConfig) -> float:
    """The share of each batch drawn from the run's own texts when `--own-text-fraction` is not given: 0.25 for
    `generate`'s single texts with `--few-shot`, whose k examples and ~1,000 texts in the task's register are
    otherwise 3% of a transfer set filled with out-of-domain sentences (low-data at k = 100, +0.90 on the mean of five
    runs: TREC +1.60 over 3 seeds, SST-2 -0.15 over 2; BENCHMARKS.md); 0 for the others: zero-shot `generate`'s texts,
    written from label phrases alone, lost with it (TREC -1.20, seed 0), and the other methods' inputs are all of
    one kind."""
    return 0.25 if low_data_generate(config) else 0.0


def default_ema_decay(config: DistillConfig) -> float:
    """The moving average's decay when `--ema-decay` is not given: min(0.999, 1 - 10 / steps), an average over about
    the last tenth of a short run and the last 1,000 steps of a long one. 0.999 at the default 10,000 steps raised
    every task's metric over 3 seeds (TREC +0.27, MRPC +1.22, RTE +2.16; SST-2 +0.33 at seed 0) and agreement on all
    but RTE (-1.32; BENCHMARKS.md)."""
    return max(0.0, min(0.999, 1 - 10 / config.steps))


def default_augment(config: DistillConfig) -> int:
    """Variants per sentence when `--augment` is not given: 4; 2 for out-of-domain sentence pairs (`ood`,
    `adversarial`, and the rule-made fill beside `generate`'s pairs, which are never varied), whose second
    sentences are rule-made variants already and which cost the teacher twice a sentence's time to label (issue 19:
    a default MRPC run from an empty cache takes 1.21x a single-sentence run with 2, 1.57x with 4); 16 for `indomain`
    sentences, whose few thousand task texts are what its student lacks (TREC's ceiling, 3 seeds: 98.00% of the
    teacher with 16, 97.38% with 8, 95.86% with 4; for RTE and MRPC pairs 8 raised the score but lowered agreement;
    BENCHMARKS.md). 16 of each generated text (low-data, the out-of-domain fill keeping 4) moved neither TREC nor
    SST-2 (+0.00, +0.04), so `generate` keeps 4."""
    if config.method == "indomain" and not config.pairs:
        return 16
    return 2 if config.pairs and config.method in ("ood", "adversarial", "generate") else 4


def check_config(config: DistillConfig) -> Method:
    """The method `config` names, once it and the options every run shares pass their checks."""
    source = teacher_source(config)
    if not config.out:
        raise DataError("give --out DIR, where the student is written")
    black_box = not config.teacher
    if not black_box and config.student_base:
        raise DataError("--student-base is for a teacher known by its answers (--teacher-url, --teacher-function, "
                        "--teacher-lm, --teacher-openai); a local --teacher gives its own")
    check_runtime(config.teacher_runtime)
    if black_box and config.teacher_runtime != "torch":
        raise DataError("--teacher-runtime is for a local --teacher")
    check_numbers(config, at_least={"steps": 1, "batch_size": 1, "eval_every": 1, "checkpoint_every": 1, "heldout": 1,
                                    "transfer_size": 2, "max_length": 4, "min_words": 1, "max_words": config.min_words,
                                    "pool_factor": 1, "augment": 0, "rare_class_variants": 0, "max_vocab": 0,
                                    "word_inputs": 0, "contrast_inputs": 0, "max_parameters": 0, "kl_weight": 0,
                                    "mse_weight": 0, "hidden_weight": 0, "feature_weight": 0, "few_shot_weight": 0,
                                    "mixup_weight": 0, "mixup_every": 1,
                                    "class_weighting": 0, "weight_decay": 0},
                  positive=("temperature", "lr"),
                  fractions=("warmup_ratio", "hard_fraction", "own_text_fraction", "ema_decay"))
    if config.method not in METHODS:
        raise DataError(f"unknown method {config.method!r}: choose one of {', '.join(METHODS)}")
    if config.student is not None and config.student not in STUDENTS:
        raise DataError(f"unknown student {config.student!r}: choose one of {', '.join(STUDENTS)}")
    if config.hidden_weight > 0 and not (config.student and STUDENTS[config.student].takes_hidden_states):
        takers = [name for name, cls in STUDENTS.items() if cls.takes_hidden_states]
        raise DataError(f"--hidden-weight needs a student that takes hidden-state targets: {', '.join(takers)}")
    check_share("--rare-class-fraction", config.rare_class_fraction)
    check_share("--ood-nearest", config.ood_nearest)
    if config.ood_nearest < 1.0 and not (config.method == "generate" and config.ood):
        raise DataError("--ood-nearest picks out-of-domain sentences near generated texts: use it with --method "
                        "generate --ood FILE[,FILE]")
    if config.augment_kinds is not None:
        augment_kinds(config)
    unknown = set(config.pair_kinds.split(",")) - set(PAIR_KINDS)
    if unknown or not config.pair_kinds:
        raise DataError(f"unknown --pair-kinds {', '.join(sorted(unknown)) or '(none given)'}: choose from "
                        f"{', '.join(PAIR_KINDS)}")
    method = METHODS[config.method]
    weight_options = [flag for flag, value in (("--hidden-weight", config.hidden_weight),
                                               ("--feature-weight", config.feature_weight),
                                               ("--mixup-weight", config.mixup_weight)) if value > 0]
    if black_box and (method.needs_weights or weight_options):
        what = f"method {config.method}" if method.needs_weights else weight_options[0]
        raise DataError(f"{what} reads the teacher's weights, and {source} gives only its answers: use method "
                        f"{', '.join(name for name, m in METHODS.items() if not m.needs_weights)}, or a local "
                        "--teacher")
    method.validate(config)
    return method


@dataclass(kw_only=True)
class LabelledTransferSet(TransferSet):
    """The transfer set with the teacher's [N, K] logits, split into training rows and a held-out slice."""

    logits: np.ndarray
    train: np.ndarray  # row indices
    heldout: np.ndarray
    seconds: float  # building and labelling it

    @property
    def heldout_inputs(self) -> list:
        return [self.inputs[i] for i in self.heldout]

    @property
    def heldout_labels(self) -> np.ndarray:
        return self.logits[self.heldout].argmax(-1)


def label_transfer_set(config: DistillConfig, method: Method, teacher: Teacher) -> LabelledTransferSet:
    """Step 1: the method's transfer set, labelled by the teacher (cached), and a held-out slice of it."""
    started = time.time()
    transfer = method.transfer_set(config, teacher)
    if config.few_shot and config.few_shot_transfer:
        shots = few_shot_texts(config, teacher.label_names)
        known = set(shots)
        own = sum(x not in known for x in transfer.inputs[:transfer.own_texts])
        transfer.inputs = shots + [x for x in transfer.inputs if x not in known]
        transfer.own_texts = len(shots) + own
        transfer.info["few_shot_texts"] = len(shots)
    if transfer.own_texts:
        transfer.info["own_texts"] = transfer.own_texts
    if len(transfer.inputs) < 2:
        raise DataError(f"method {config.method} produced {len(transfer.inputs)} inputs; widen --min-words/--max-words "
                        "or add corpora")
    logits, _ = label_with_teacher(teacher, transfer.inputs, config.cache_dir)
    order = np.random.default_rng([config.seed, 4]).permutation(len(transfer.inputs))
    heldout_size = min(config.heldout, len(order) // 5)
    return LabelledTransferSet(**vars(transfer), logits=logits, train=order[heldout_size:],
                               heldout=order[:heldout_size], seconds=time.time() - started)


def few_shot_texts(config: DistillConfig, label_names: list[str]) -> list[str]:
    """The `--few-shot` examples' texts and `--augment` variants of each (of `--augment-kinds`), without repeats."""
    texts = read_labelled(config.few_shot, config.few_shot_text_col, config.few_shot_label_col, None,
                          label_names).texts
    rng = np.random.default_rng([config.seed, 5])
    return list(dict.fromkeys(texts + augmented(texts, config.augment, rng, config.min_words, augment_kinds(config))))


def build_student(config: DistillConfig, teacher: Teacher, transfer: LabelledTransferSet, work: Path,
                  is_main_process: bool) -> Setup:
    """Step 2: the student, its vocabulary pruned to the tokens the training rows use (and the few-shot examples'
    and `--vocab-from`'s), initialised from the teacher; returned in the `Setup` the objectives read."""
    encoded = teacher.encode([transfer.inputs[i] for i in transfer.train])
    token_counts = Counter(t for ids in encoded["input_ids"] for t in ids)
    shots = read_labelled(config.few_shot, config.few_shot_text_col, config.few_shot_label_col, None,
                          teacher.label_names) if config.few_shot else None
    if shots is not None:
        token_counts.update(t for ids in teacher.encode(shots.texts)["input_ids"] for t in ids)
    if config.vocab_from:  # ranked after every token the transfer set uses (count 0)
        texts = read_sentences([Path(p) for p in config.vocab_from.split(",") if p], 1, 10_000)
        for ids in teacher.encode(texts)["input_ids"]:
            for t in ids:
                token_counts.setdefault(t, 0)
    vocabulary = build_vocabulary(teacher.tokenizer, token_counts, config.max_vocab)
    # the shape this run began with: resumed by a later version whose student defaults differ, it keeps its own
    shape_file = work / "student_options.json"
    resumed = shape_file.is_file()
    if resumed:
        options = json.loads(shape_file.read_text())
    else:
        options = parse_student_options(config.student, config.student_options)
        if config.max_parameters:
            options = fit_to_budget(config.student, teacher, vocabulary, options, config.max_parameters)
    student = create_student(config.student, teacher, vocabulary, options)
    if is_main_process and not resumed:
        write_json(shape_file, {k: v for k, v in dataclasses.asdict(student.config).items()
                                if k not in ("vocab_size", "num_labels")})
    segments = segment_ids(encoded)
    return Setup(config=config, teacher=teacher, student=student, vocabulary=vocabulary, token_counts=token_counts,
                 teacher_ids=encoded["input_ids"], segments=segments, shots=shots, work=work,
                 is_main_process=is_main_process)


@dataclass
class Evaluation:
    """What the loop measures at each evaluation: agreement with the teacher on held-out transfer inputs (which
    picks the best checkpoint) and, when labelled data is given, the task metric (reported only)."""

    heldout_inputs: list
    heldout_labels: np.ndarray
    examples: Examples | None
    metric: str

    def __call__(self, student: Student) -> dict:
        record = {"heldout_agreement": agreement(student.logits(self.heldout_inputs).argmax(-1), self.heldout_labels)}
        if self.examples is not None:
            predicted = student.logits(self.examples.inputs()).argmax(-1)
            record["eval_" + self.metric] = classification_metrics(
                self.examples.labels, predicted, len(student.label_names), self.metric)["task_metric"]
        return record


def train(config: DistillConfig, setup: Setup, objectives: list[Objective], targets: torch.Tensor,
          evaluate: Evaluation, accelerator, stop_after_steps: int | None = None, *,
          own_rows: np.ndarray) -> tuple[float, float] | None:
    """Step 3: the loop. Each step: the student on a batch of training rows (with `hard_fraction`, part of it drawn
    again where the student last disagreed most: `HardRows`; with `own_text_fraction`, part of it drawn at random
    from `own_rows`, the training positions of the method's own texts), KL at `temperature` plus logit MSE against the
    teacher's logits (`targets`, [N_train, K]), each row weighted by how rare its teacher class is with
    `class_weighting`, plus each objective's term; one AdamW step. Evaluates at step 0, every `eval_every` steps and
    at the end, keeping the best student in `work/best` (with `ema_decay`, the moving average of its weights is the
    student evaluated, kept and left in `setup.student` at the end); checkpoints every `checkpoint_every` steps,
    resuming from the latest. Returns (best held-out agreement, seconds this session), or None when stopped after
    `stop_after_steps` or on a process other than the main one."""
    work, model = setup.work, setup.student
    student_ids, segments = model.from_teacher_ids(setup.teacher_ids), setup.segments
    lengths = [len(x) for x in student_ids]
    lr = config.lr or type(model).default_lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    state = load_checkpoint(work, model, optimizer)
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay)) if config.ema_decay else None
    if average is not None and "ema" in state["extra_state"]:
        average.load_state_dict(state["extra_state"]["ema"])
    for objective in objectives:
        if objective.name in state["extra_state"]:
            objective.load_state_dict(state["extra_state"][objective.name])
    row_weights = losses.class_balance_weights(targets, config.class_weighting)
    hard = HardRows(len(lengths), config.hard_fraction, config.batch_size, config.seed)
    hard.load_state_dict(state["extra_state"].get("hard_rows", {}))
    step, best = state["step"], state.get("best_agreement", -1.0)
    if step and state.get("kept_token_ids_hash") != _digest(setup.vocabulary):
        raise DataError(f"{work} was made from a different transfer set: delete it to start again")
    metrics_path = work / "metrics.jsonl"
    for name in ("metrics.jsonl", *(a for o in objectives for a in o.artefacts)):
        _truncate_jsonl(work / name, step)
    student, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    objectives = [objective.to(device) for objective in objectives]
    scored = model if average is None else average.to(device).module  # what is evaluated and kept
    hidden_states = any(objective.needs_hidden_states for objective in objectives)
    features_of = logit_layer(model, len(model.label_names)) if any(o.needs_features for o in objectives) else None

    own_count = round(config.own_text_fraction * config.batch_size) if len(own_rows) else 0

    def own_draw(step: int) -> list[int]:  # depends only on the seed and the step, so a resumed run draws the same
        return np.random.default_rng([config.seed, 7, step]).choice(own_rows, own_count).tolist() if own_count else []

    walked = config.batch_size - hard.count - own_count  # rows a batch takes from the epoch's walk over the set
    steps_per_epoch = max(1, math.ceil(len(lengths) / walked))
    epoch, epoch_batches = -1, []
    progress = tqdm(total=config.steps, initial=step, desc=f"distill {config.method} -> {config.student}", unit="step",
                    disable=not accelerator.is_main_process)
    train_started = time.time()
    # every session of this run (a resumed run has several), up to its last checkpoint: run.json reports them
    sessions_path = work / "sessions.json"
    sessions = json.loads(sessions_path.read_text()) if sessions_path.is_file() else []
    sessions.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "from_step": step, "to_step": step, "seconds": 0.0})

    def evaluate_and_keep_best(loss: float | None) -> None:
        nonlocal best
        record = {"step": step, "loss": loss, "lr": linear_warmup_decay(lr, step, config.steps, config.warmup_ratio),
                  **evaluate(scored), "seconds": round(time.time() - train_started, 1)}
        append_jsonl(metrics_path, [record])
        log.info("step %d: %s", step, record)
        if record["heldout_agreement"] > best:
            best = record["heldout_agreement"]
            scored.save_pretrained(work / "best")
        student.train()

    if step == 0 and accelerator.is_main_process:
        evaluate_and_keep_best(None)
    student.train()
    while step < config.steps:
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            batches = length_grouped_batches(lengths, walked, config.seed, epoch)
            epoch_batches = batches[accelerator.process_index :: accelerator.num_processes] or batches
        rows = epoch_batches[(step % steps_per_epoch) % len(epoch_batches)] + hard.draw(step) + own_draw(step)
        inputs = {k: v.to(device) for k, v in model.collate([student_ids[i] for i in rows],
                                                             [segments[i] for i in rows]).items()}
        for group in optimizer.param_groups:
            group["lr"] = linear_warmup_decay(lr, step, config.steps, config.warmup_ratio)
        with inputs_of(features_of) if features_of else nullcontext([]) as features:  # [B, D], when asked
            logits, hidden = (student(**inputs, output_hidden_states=True) if hidden_states
                              else (student(**inputs), None))
        batch = Batch(rows=rows, inputs=inputs, teacher_logits=targets[rows].to(device), student_logits=logits,
                      hidden_states=hidden, student_features=features[-1] if features else None, student=student)
        loss, kl = losses.distillation_loss(batch.student_logits, batch.teacher_logits, config.temperature,
                                            config.kl_weight, config.mse_weight, config.mse_centred,
                                            row_weights[rows].to(device))
        hard.update(rows, kl)
        for objective in objectives:
            term = objective.loss(step, batch)
            if term is not None:
                loss = loss + term
        if not math.isfinite(loss.item()):  # never train on, save or score a NaN
            raise DataError(f"step {step + 1}: the loss is {loss.item()}; the student was not saved. Check the "
                            "teacher's logits and the options (a large --lr, --temperature near 0)")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if average is not None:
            average.update_parameters(model)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if accelerator.is_main_process and (step % config.eval_every == 0 or step == config.steps):
            evaluate_and_keep_best(round(loss.item(), 5))
        if accelerator.is_main_process and (step % config.checkpoint_every == 0 or step == config.steps):
            save_checkpoint(work, step, model, optimizer, {"best_agreement": best,
                                                           "kept_token_ids_hash": _digest(setup.vocabulary)},
                            {name: saved for name, saved in [("hard_rows", hard.state_dict()),
                                                             ("ema", average.state_dict() if average else {}),
                                                             *((o.name, o.state_dict()) for o in objectives)] if saved})
            sessions[-1].update(to_step=step, seconds=round(time.time() - train_started, 1))
            write_json(sessions_path, sessions)
            if stop_after_steps is not None and step >= stop_after_steps:
                progress.close()
                return None
    progress.close()
    if average is not None:  # the last student is the average's last state too
        model.load_state_dict(average.module.state_dict())
    return (best, time.time() - train_started) if accelerator.is_main_process else None


def finish(config: DistillConfig, run: RunDirectory, setup: Setup, transfer: LabelledTransferSet,
           objectives: list[Objective], trained: tuple[float, float], eval_examples: Examples | None, metric: str,
           started: float) -> tuple[Student, dict]:
    """Step 4: the best and last students, the report (`run.json`), the model card and the artefacts, moved to
    `config.out` in one rename. Returns (the best student, the report)."""
    work, teacher = run.work, setup.teacher
    best, train_seconds = trained
    final = work / "final"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(work / "best", final)
    setup.student.save_pretrained(final / "last")
    best_student = load_student(final)
    artefacts = [name for o in objectives for name in o.artefacts if (work / name).is_file()]
    report = {
        "method": config.method, "student": config.student, "transfer": transfer.description,
        "in_domain": transfer.in_domain, "transfer_info": transfer.info, "transfer_size": len(transfer.inputs),
        "vocabulary": len(setup.vocabulary), "few_shot_examples": len(setup.shots) if setup.shots is not None else 0,
        "teacher_bf16": teacher.bf16, "teacher_parameters": teacher.num_parameters(),
        "student_parameters": best_student.num_parameters(),
        "student_config": dataclasses.asdict(best_student.config),
        "compression": round(teacher.num_parameters() / best_student.num_parameters(), 1)
        if teacher.num_parameters() else None,
        "heldout_agreement": best, "heldout_size": len(transfer.heldout), "steps": config.steps,
        "transfer_seconds": round(transfer.seconds, 1), "train_seconds_this_session": round(train_seconds, 1),
        "sessions": json.loads((work / "sessions.json").read_text()) if (work / "sessions.json").is_file() else [],
        "peak_memory_mib": peak_memory_mib(), "artefacts": artefacts,
        "config": config_dict(config), "versions": versions(), "machine": machine_description(),
    }
    # as `zskd eval` scores; a black box answers as it answers
    exact_teacher = Teacher(teacher.model, teacher.tokenizer, teacher.max_length, bf16=False) \
        if teacher.white_box else teacher
    if not teacher.white_box:
        report["teacher"] = teacher.identity
    if eval_examples is not None:
        report["eval"], eval_predicted = _final_eval(best_student, exact_teacher, eval_examples, metric,
                                                     config.cache_dir)
    if config.pairs:
        report["pair_profile"] = {"transfer": pair_profile(transfer.inputs, transfer.logits.argmax(-1),
                                                           teacher.label_names)}
        if eval_examples is not None and eval_examples.is_pair:
            report["pair_profile"]["eval"] = pair_profile(eval_examples.inputs(), eval_predicted, teacher.label_names)
    # 0 when everything came from the cache
    report["teacher_inputs_labelled"] = teacher.inputs_labelled + \
        (exact_teacher.inputs_labelled if exact_teacher is not teacher else 0)
    if not teacher.white_box:  # what the labels cost: requests, texts, retries, failures, seconds
        report["teacher_cost"] = dict(teacher.cost)
    report["total_seconds"] = round(time.time() - started, 1)
    write_json(final / "run.json", report)
    for name in ("metrics.jsonl", *artefacts):
        shutil.copy(work / name, final / name)
    _write_transfer_sample(final / "transfer_sample.tsv", transfer.inputs, transfer.logits, teacher.label_names)
    (final / "README.md").write_text(model_card(report))
    run.finish(final)
    return best_student, report


def _final_eval(student, teacher: Teacher, examples: Examples, metric: str,
                cache_dir: str) -> tuple[dict, np.ndarray]:
    """Student against teacher on labelled examples, and the teacher's predicted classes."""
    inputs = examples.inputs()
    student_pred = student.logits(inputs).argmax(-1)
    teacher_pred = label_with_teacher(teacher, inputs, cache_dir, progress=False)[0].argmax(-1)
    student_scores = classification_metrics(examples.labels, student_pred, teacher.num_labels, metric)
    return {"data": examples.source, "n": len(inputs), "metric": metric, "student": student_scores,
            "constant_answer": best_constant_answer(examples.labels, teacher.label_names, metric),
            **teacher_comparison(examples.labels, student_pred, teacher_pred, teacher.label_names, metric,
                                 student_scores["task_metric"])}, teacher_pred


def _digest(token_ids: list[int]) -> str:
    return hashlib.sha1(",".join(map(str, token_ids)).encode()).hexdigest()


def _truncate_jsonl(path: Path, step: int) -> None:
    """Drop JSONL lines past the checkpoint being resumed from (they will be written again)."""
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _write_transfer_sample(path: Path, inputs, logits: np.ndarray, label_names: list[str], count: int = 200) -> None:
    """The first `count` transfer inputs with the teacher's label and confidence, for a person to read."""
    probabilities = torch.softmax(torch.from_numpy(logits[:count]), -1).numpy()
    lines = ["teacher_label\tconfidence\ttext"]
    for item, p in zip(inputs[:count], probabilities):
        text = " [SEP] ".join(item) if isinstance(item, tuple) else item
        lines.append(f"{label_names[int(p.argmax())]}\t{p.max():.3f}\t{text}")
    path.write_text("\n".join(lines) + "\n")
