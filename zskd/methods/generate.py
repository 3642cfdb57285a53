"""Transfer sets written by a language model (prompt-based zero-shot generation): method `generate`.

    zskd generate --teacher runs/teachers/sst2 --task sst2 --count 4000 --out runs/gen/sst2.parquet
    zskd generate --teacher my-teacher --describe "support ticket" --labels billing,bug,other --out gen.parquet
    zskd generate --teacher runs/teachers/sst2 --task sst2 --few-shot sst2-k16.tsv --out runs/gen/sst2-k16.parquet
    zskd distill --teacher runs/teachers/sst2 --method generate --generated runs/gen/sst2.parquet --out ...
    zskd generate --teacher runs/teachers/mrpc --pairs --count 2000 --out runs/gen/mrpc-pairs.parquet
    zskd generate --teacher-url http://host:8080/predict --task sst2 --out runs/gen/sst2-remote.parquet

An instruct LM (default: the packaged SmolLM2-135M-Instruct) is asked, per label, for a text of the described kind,
through varied templates and topics. The prompt's label is only a hint: the teacher labels every sample, and its
logits are the target. The teacher is any `zskd distill` takes (`TeacherOptions`: a local classifier, an endpoint, a
function, a prompted LM). Samples are deduplicated and degenerate ones (empty, looping, not words) dropped.
With `--few-shot FILE` (k labelled examples: the low-data setting of Generation-Distillation), the LM is first
fine-tuned to answer each example's label prompt with the example (`--lm-heldout` holds a share of them out and
stops at the first epoch that does not lower the LM's loss on it; `--lm-keywords` names a word of each example in its
prompt, then a corpus word in each sampling prompt, for texts in the examples' register on other topics), then
sampled the same way. Sampling runs in chunks, each written whole to `<out>.partial/`, so an interrupted run
resumes; the finished file (text, prompt, label hint, teacher logits) appears at `--out` in one rename.

With `--pairs` (teachers that read sentence pairs), the LM is given a sentence of the out-of-domain corpora and
asked for a second one in a relation pair teachers separate (`PAIR_RELATIONS`: a paraphrase, a consequence, a
contradiction, a question it answers, a copy with one fact changed); the file gains a `text_pair` column and the
report the teacher's classes for each relation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zskd.config import check_numbers, config_dict, option, require, write_json
from zskd.data import DataError, read_labelled
from zskd.generation import LanguageModel, SamplingConfig, clean_samples
from zskd.labelling import label_with_teacher
from zskd.methods.base import Method
from zskd.methods.common import TransferSet, balanced_selection, class_histogram
from zskd.methods.ood import augment_kinds, augmented, ood_transfer_set
from zskd.resources import SMOLLM2
from zskd.rundir import RunDirectory
from zskd.runinfo import peak_memory_mib
from zskd.tasks import get_task
from zskd.teacher_options import TeacherOptions, load_teacher, teacher_source

log = logging.getLogger(__name__)

TEMPLATES = (
    "Write a {kind} that {label}. Reply with the {kind} only, in one sentence.",
    "Write one short {kind} that {label}, about {topic}. Only the {kind}, nothing else.",
    "Give an example of a {kind} that {label}. Answer with the {kind} alone.",
    "You are collecting examples. Write a {kind} that {label}, mentioning {topic}. One sentence.",
)
# --pairs: the second sentence the LM is asked for, given a first one
PAIR_RELATIONS = {
    "paraphrase": 'Rewrite this sentence in other words, keeping its meaning: "{sentence}" Reply with the new '
                  'sentence only.',
    "consequence": 'Write one sentence that must be true if this sentence is true: "{sentence}" Reply with that '
                   'sentence only.',
    "contradiction": 'Write one sentence that says the opposite of this sentence: "{sentence}" Reply with that '
                     'sentence only.',
    "question": 'Write a question that this sentence answers: "{sentence}" Reply with the question only.',
    "changed fact": 'Rewrite this sentence with one fact changed (a number, a name or a place): "{sentence}" Reply '
                    'with the new sentence only.',
}
# for few-shot prompts with --no-lm-keywords: a topic from TOPICS could contradict the example
TOPIC_FREE = tuple(t for t in TEMPLATES if "{topic}" not in t)
# for few-shot prompts with --lm-keywords: the topic is a word of the example (fine-tuning) or of a corpus (sampling)
KEYWORD_TEMPLATES = tuple(t for t in TEMPLATES if "{topic}" in t)
TOPICS = (
    "food", "travel", "sports", "history", "science", "music", "a city", "a famous person", "animals", "money",
    "health", "technology", "a book", "the weather", "family", "work", "school", "a holiday", "a game", "a film",
    "the ocean", "a car", "politics", "art", "a company", "space", "a river", "language", "the army", "a disease",
)


@dataclass
class GenerateConfig(TeacherOptions):
    """Every option of `zskd generate`; the teacher that labels the samples comes first (`TeacherOptions`)."""

    out: str = option("", "output file (.parquet): text, prompt, label hint, teacher logits")
    task: str | None = option(None, "named task: its text kind and label phrases (sst2, trec)")
    describe: str | None = option(None, "what a text is, e.g. 'movie review' (instead of --task)")
    labels: str | None = option(None, "comma-separated label words for the prompts (default: the teacher's label "
                                      "names)")
    generator: str = option(SMOLLM2.name, "causal LM: packaged name, local directory or hub id")
    generator_bf16: bool | None = option(None, "sample with a bfloat16 copy of the LM (default: where the CPU has "
                                               "native bf16)")
    count: int = option(4000, "prompts to sample (kept samples are fewer after deduplication)")
    max_new_tokens: int = option(48, "longest sample, in LM tokens")
    temperature: float = option(1.0, "sampling temperature")
    top_p: float = option(0.95, "nucleus sampling mass")
    top_k: int = option(50, "sample among the k most likely tokens")
    batch_size: int = option(32, "prompts sampled together")
    chunk_size: int = option(512, "prompts per resumable chunk")
    few_shot: str | None = option(None, "labelled file of a few examples: fine-tune the LM on them first (low-data)")
    few_shot_text_col: str = option("sentence", "text column of --few-shot")
    few_shot_label_col: str = option("label", "label column of --few-shot")
    lm_epochs: int = option(4, "--few-shot: most fine-tuning epochs")
    lm_heldout: float = option(0.0, "--few-shot: share of the examples held out of fine-tuning, which then stops at "
                                    "the first epoch that does not lower the LM's loss on them (0: every example, "
                                    "all --lm-epochs)")
    lm_lr: float = option(5e-5, "--few-shot: fine-tuning learning rate")
    lm_keywords: bool = option(True, "--few-shot: each fine-tuning prompt names a word of its example, each sampling "
                                     "prompt a word of a corpus sentence (--ood), so that the LM writes texts like "
                                     "the examples about other things (off: prompts without a topic)")
    min_words: int = option(3, "shorter samples are dropped")
    pairs: bool = option(False, "write sentence pairs: a corpus sentence and a second one the LM writes about it "
                                "(paraphrase, consequence, contradiction, question, changed fact)")
    ood: str | None = option(None, "--pairs, --lm-keywords: corpus files of first sentences or keywords, "
                                   "comma-separated (default: the out-of-domain corpora in the data root)")
    data_root: str | None = option(None, "benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    cache_dir: str = option("runs/cache/labels", "teacher label cache, shared across runs")
    teacher_bf16: bool | None = option(None, "label under bfloat16 autocast (default: where the CPU has native bf16)")
    seed: int = option(0, "seed for prompts and sampling")
    restart: bool = option(False, "start again: delete the work an interrupted run left in <out>.partial (resuming "
                                  "it with other options is refused)")
    trust_remote_code: bool = option(False, "allow custom model code (off: safer)")


def prompt_plan(kind: str, label_phrases: list[str], count: int, seed: int, templates=TEMPLATES,
                labels: list[int] | None = None, topics: list[str] | None = None) -> list[tuple[str, int]]:
    """`count` (prompt, label hint) pairs: the labels in turn (or the given `labels`), each with a random template
    and topic (or the given `topics`, one a prompt)."""
    rng = np.random.default_rng([seed, 5])
    plan = []
    for i in range(count):
        label = labels[i] if labels is not None else i % len(label_phrases)
        template = templates[int(rng.integers(len(templates)))]
        topic = TOPICS[int(rng.integers(len(TOPICS)))] if topics is None else topics[i]
        plan.append((template.format(kind=kind, label=label_phrases[label], topic=topic), label))
    return plan


def pair_prompt_plan(sentences: list[str], count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` (prompt, first sentence, relation): random distinct sentences, the relations in turn."""
    rng = np.random.default_rng([seed, 7])
    chosen = rng.permutation(len(sentences))[:count]
    relations = list(PAIR_RELATIONS)
    plan = []
    for i, index in enumerate(chosen):
        relation = relations[i % len(relations)]
        plan.append((PAIR_RELATIONS[relation].format(sentence=sentences[index]), sentences[index], relation))
    return plan


def keywords(text: str, common: set[str]) -> list[str]:
    """The words of `text` a prompt may name as its topic: alphabetic, 3 letters or more, not among `common` (a
    corpus's most frequent words)."""
    return [w for w in text.split() if w.isalpha() and len(w) >= 3 and w.lower() not in common]


def corpus_keywords(config: GenerateConfig, count: int) -> tuple[list[str], set[str]]:
    """`count` keywords for sampling prompts, drawn from every keyword the corpus sentences use (so frequent topics
    come more often), and the corpus's 300 most frequent words, which are never keywords."""
    from zskd.methods.ood import corpus_files, frequent_words, read_sentences

    sentences = read_sentences(corpus_files(config), 4, 40)
    common = set(frequent_words(sentences, 300))
    pool = [w for sentence in sentences for w in keywords(sentence, common)]
    if not pool:
        raise DataError("--lm-keywords: the corpora have no words beyond their 300 most frequent; pass a larger --ood")
    rng = np.random.default_rng([config.seed, 13])
    return [pool[i] for i in rng.integers(len(pool), size=count)], common


def first_sentences(config: GenerateConfig) -> list[str]:
    """The corpus sentences `--pairs` asks about: 8 to 30 words, so that a second one of the same length fits."""
    from zskd.methods.ood import corpus_files, read_sentences

    return read_sentences(corpus_files(config), 8, 30)


def label_phrases(config: GenerateConfig, teacher_labels: list[str]) -> tuple[str, list[str]]:
    """(text kind, one phrase per teacher label) for the prompts."""
    if config.task:
        task = get_task(config.task)
        if not task.label_phrases:
            raise DataError(f"task {task.name} has no prompt phrases: pass --describe and --labels")
        if config.labels or config.describe:
            raise DataError("give --task, or --describe with --labels, not both")
        return task.text_kind, list(task.label_phrases)
    if not config.describe:
        raise DataError("give --task NAME or --describe 'what a text is' for the prompts")
    words = config.labels.split(",") if config.labels else teacher_labels
    if len(words) != len(teacher_labels):
        raise DataError(f"--labels has {len(words)} names but the teacher has {len(teacher_labels)} labels "
                        f"({', '.join(teacher_labels)})")
    return config.describe, [f"is {w.strip()}" for w in words]


def generate(config: GenerateConfig, language_model: LanguageModel | None = None) -> dict:
    """Sample, clean and label a transfer set; write it to `config.out`; return a report."""
    teacher_source(config)
    if not config.out:
        raise DataError("give --out FILE.parquet, where the generated set is written")
    check_numbers(config, at_least={"count": 1, "max_new_tokens": 1, "top_k": 1, "batch_size": 1, "chunk_size": 1,
                                    "lm_epochs": 1, "min_words": 1}, positive=("temperature", "top_p", "lm_lr"),
                  fractions=("lm_heldout",))
    require("top_p", config.top_p, config.top_p <= 1.0, "must be in (0, 1]")
    if Path(config.out).suffix != ".parquet":
        raise DataError(f"--out {config.out}: the generated set is a Parquet file; give a name ending in .parquet")
    report_path = Path(config.out).with_suffix(".json")
    if report_path.exists() and not written_by_generate(report_path):
        raise DataError(f"{report_path} exists and was not written by zskd generate, whose report goes there: move "
                        "it, or choose another --out")
    if config.pairs and (config.task or config.describe or config.few_shot):
        raise DataError("--pairs asks for second sentences about corpus sentences: --task, --describe and --few-shot "
                        "do not apply; drop them")
    run = RunDirectory(config.out)
    teacher = load_teacher(config, pairs=config.pairs, bf16=config.teacher_bf16, cache_dir=config.cache_dir,
                           trust_remote_code=config.trust_remote_code)
    if config.pairs:
        pair_plan = pair_prompt_plan(first_sentences(config), config.count, config.seed)
        plan = [(prompt, relation) for prompt, _, relation in pair_plan]
    else:
        kind, phrases = label_phrases(config, teacher.label_names)
        common: set[str] = set()
        if config.few_shot and config.lm_keywords:
            topics, common = corpus_keywords(config, config.count)
            plan = prompt_plan(kind, phrases, config.count, config.seed, KEYWORD_TEMPLATES, topics=topics)
        else:
            plan = prompt_plan(kind, phrases, config.count, config.seed, TOPIC_FREE if config.few_shot else TEMPLATES)
    work = run.begin({k: v for k, v in config_dict(config).items() if k not in ("cache_dir", "teacher_bf16")},
                     config.restart)

    lm = language_model
    finetuning = None
    if config.few_shot and lm is None:
        lm, finetuning = fine_tuned_lm(config, kind, phrases, teacher.label_names, work, common)
    sampling = SamplingConfig(config.max_new_tokens, config.temperature, config.top_p, config.top_k, config.batch_size)
    texts: list[str] = []
    chunks = range(0, len(plan), config.chunk_size)
    sampling_seconds, resumed = 0.0, 0  # this call's sampling; chunks found written by an earlier call
    for number, start in enumerate(chunks):
        path = work / f"chunk-{number:05d}.json"
        if path.is_file():
            resumed += 1
        else:
            started = time.time()
            lm = lm or LanguageModel.load(config.generator, config.trust_remote_code, config.generator_bf16)
            prompts = [p for p, _ in plan[start : start + config.chunk_size]]
            log.info("sampling chunk %d of %d", number + 1, len(chunks))
            samples = lm.sample(prompts, sampling, seed=config.seed * 100_003 + number, progress=True)
            write_json(path, samples)
            sampling_seconds += time.time() - started
        texts.extend(json.loads(path.read_text()))

    kept, dropped = clean_samples(texts, config.min_words)
    if not kept:
        raise DataError(f"the generator wrote no usable text ({dropped}); try another --generator or prompts")
    texts = [texts[i].strip().strip("\"'").strip() if config.pairs else texts[i] for i in kept]
    if config.pairs:
        firsts = [pair_plan[i][1] for i in kept]
        logits, _ = label_with_teacher(teacher, list(zip(firsts, texts)), config.cache_dir)
        columns = {"text": firsts, "text_pair": texts, "relation": [plan[i][1] for i in kept]}
    else:
        logits, _ = label_with_teacher(teacher, texts, config.cache_dir)
        columns = {"text": texts, "label_hint": [teacher.label_names[plan[i][1]] for i in kept]}
    table = pa.table({**columns, "prompt": [plan[i][0] for i in kept],
                      "teacher_logits": [row.tolist() for row in logits]})
    pq.write_table(table, work / "generated.parquet")
    report = {"prompts": len(plan), "kept": len(kept), "dropped": dropped,
              "teacher_classes": class_histogram(logits, teacher.label_names),
              "sampling_seconds": round(sampling_seconds, 3), "chunks_resumed": resumed}
    if config.pairs:  # which relations land in which of the teacher's classes
        relations = np.array(columns["relation"])
        report["teacher_classes_by_relation"] = {
            relation: class_histogram(logits[relations == relation], teacher.label_names)
            for relation in PAIR_RELATIONS if (relations == relation).any()}
    else:
        hints = np.array([plan[i][1] for i in kept])
        report.update(label_phrases=phrases, text_kind=kind,
                      hint_agreement=round(100.0 * float((logits.argmax(-1) == hints).mean()), 2))
    report.update(peak_memory_mib=peak_memory_mib(), config=config_dict(config))
    if finetuning is not None:
        report["finetuning"] = finetuning
    write_json(work / "generated.json", report)
    (work / "generated.json").replace(report_path)
    run.finish(work / "generated.parquet")
    return report


def written_by_generate(path: Path) -> bool:
    """Whether `path` is a report `zskd generate` wrote (and may replace)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(report, dict) and {"prompts", "kept", "config"} <= report.keys()


def fine_tuned_lm(config: GenerateConfig, kind: str, phrases: list[str], label_names: list[str], work: Path,
                  common: set[str]) -> tuple[LanguageModel, dict]:
    """The generator fine-tuned on `config.few_shot` (saved in `work/generator`, reused when resuming), and a
    record of the fine-tuning: examples, loss on them before and after, loss per epoch, and, with
    `config.lm_heldout`, the loss on the held-out examples that stopped it. With `config.lm_keywords` each prompt
    names a word of its example (not one of the `common` words) as its topic."""
    saved, record = work / "generator", work / "finetuning.json"
    if (saved / "config.json").is_file() and record.is_file():
        return LanguageModel.load(str(saved), bf16=config.generator_bf16), json.loads(record.read_text())
    examples = read_labelled(config.few_shot, config.few_shot_text_col, config.few_shot_label_col, None, label_names)
    if config.lm_keywords:
        rng = np.random.default_rng([config.seed, 12])
        # an example of only common words names one of them
        topics = [str(rng.choice(keywords(text, common) or text.split())) for text in examples.texts]
        plan = prompt_plan(kind, phrases, len(examples), config.seed, KEYWORD_TEMPLATES, examples.labels, topics)
    else:
        plan = prompt_plan(kind, phrases, len(examples), config.seed, TOPIC_FREE, labels=examples.labels)
    prompts = [prompt for prompt, _ in plan]
    shuffled = np.random.default_rng([config.seed, 11]).permutation(len(examples))
    held = sorted(shuffled[: int(config.lm_heldout * len(examples))].tolist())
    train = sorted(set(range(len(examples))) - set(held))
    lm = LanguageModel.load(config.generator, config.trust_remote_code, config.generator_bf16)
    before = lm.response_loss(prompts, examples.texts)
    history = lm.finetune([prompts[i] for i in train], [examples.texts[i] for i in train], epochs=config.lm_epochs,
                          lr=config.lm_lr, seed=config.seed,
                          heldout=([prompts[i] for i in held], [examples.texts[i] for i in held]) if held else None)
    result = {"examples": len(examples), "heldout_examples": len(held), "loss_before": round(before, 4),
              "loss_after": round(lm.response_loss(prompts, examples.texts), 4),
              "epoch_losses": [round(x, 4) for x in history["train"]],
              "heldout_losses": [round(x, 4) for x in history["heldout"]]}
    if config.lm_keywords:
        result["keywords"] = topics
    log.info("generator fine-tuned on %d examples (%d held out), %d epochs: loss %.3f -> %.3f", len(train), len(held),
             len(history["train"]), result["loss_before"], result["loss_after"])
    shutil.rmtree(saved, ignore_errors=True)
    lm.save(work / "generator.tmp")
    (work / "generator.tmp").rename(saved)
    write_json(record, result)
    return lm, result


def read_generated(path: str | Path, pairs: bool = False) -> list[str] | list[tuple[str, str]]:
    """The texts of a file written by `zskd generate` (with `pairs`, its sentence pairs)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: write it with `zskd generate ... --out {path}`")
    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise DataError(f"{path} has no 'text' column: it was not written by `zskd generate`")
    if pairs != ("text_pair" in table.column_names):
        raise DataError(f"{path} holds {'single texts' if pairs else 'sentence pairs'} but the teacher reads "
                        f"{'pairs' if pairs else 'single texts'}: write it with `zskd generate"
                        f"{' --pairs' if pairs else ''}`")
    texts = table.column("text").to_pylist()
    return list(zip(texts, table.column("text_pair").to_pylist())) if pairs else texts


def generated_transfer_set(config, teacher) -> TransferSet:
    """Method `generate` in the distillation loop: the texts of `config.generated` with `config.augment` variants of
    each (spans and perturbed copies, as for `ood`: a few thousand generated texts alone are soon memorised), at
    most `transfer_size`, balanced across the teacher's predicted classes when `config.balance`. With `config.ood`,
    sentences of those corpora (built as method `ood` builds them; with `config.ood_nearest` < 1, only those that
    read most like the generated texts) fill the budget the generated texts leave."""
    texts = generated = read_generated(config.generated, bool(config.pairs))
    rng = np.random.default_rng([config.seed, 6])
    info: dict = {"generated": str(config.generated), "generated_texts": len(texts)}
    if config.augment and not config.pairs:  # spans and perturbed copies are rule-made pairs' job (`ood`)
        variants = augmented(texts, config.augment, rng, config.min_words, augment_kinds(config))
        texts = list(dict.fromkeys(texts + variants))
    texts = [texts[i] for i in rng.permutation(len(texts))]
    info["pool"] = len(texts)
    if config.balance:
        logits, _ = label_with_teacher(teacher, texts, config.cache_dir)
        chosen = balanced_selection(logits, config.transfer_size, config.seed)
        info["classes_before"] = class_histogram(logits, teacher.label_names)
        info["classes_after"] = class_histogram(logits[chosen], teacher.label_names)
        texts = [texts[i] for i in chosen]
    else:
        texts = texts[: config.transfer_size]
    description, own_texts = f"generate: {len(texts)} texts from {Path(config.generated).name}", len(texts)
    if config.ood and config.transfer_size > len(texts):  # out-of-domain text fills the rest of the budget
        extra = ood_transfer_set(dataclasses.replace(config, transfer_size=config.transfer_size - len(texts)), teacher,
                                 near=None if config.pairs else generated)
        texts += extra.inputs
        info["ood"] = extra.info
        description += f" + {extra.description}"
    return TransferSet(texts, description, info=info, own_texts=own_texts)


def validate(config) -> None:
    if not config.generated:
        raise DataError("method generate reads a file from `zskd generate`: pass --generated FILE.parquet")


METHOD = Method(transfer_set=generated_transfer_set, validate=validate)
