"""Method `generate` on a tiny random causal LM built in the test: batched sampling, cleaning, resuming, and the
generated transfer set through `zskd generate` and `zskd distill`."""

import itertools
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from zskd.cli import main
from zskd.generation import LanguageModel, SamplingConfig, clean_samples, is_degenerate
from zskd.methods.generate import PAIR_RELATIONS, GenerateConfig, generate, prompt_plan


def test_batched_sampling_returns_one_text_per_prompt_reproducibly(tiny_lm):
    lm = LanguageModel.load(str(tiny_lm))
    prompts = ["write a review that is positive", "give an example", "one short sentence about the cat"] * 4
    config = SamplingConfig(max_new_tokens=6, batch_size=5)
    first = lm.sample(prompts, config, seed=1)
    assert len(first) == len(prompts) and all(isinstance(t, str) for t in first)
    assert sum(len(t.split()) for t in first) > len(prompts)  # it wrote words, not nothing
    assert lm.sample(prompts, config, seed=1) == first
    assert lm.sample(prompts, config, seed=2) != first


def test_cleaning_drops_duplicates_and_degenerate_samples():
    texts = ["The movie was good.", "the movie  was good", "\"The movie was good.\"", "", "ok",
             "bad bad bad bad bad bad bad", "1 2 3 4 5 6 7 8", "a fine film with great acting",
             "a b c a b c a b c a b c"]
    kept, dropped = clean_samples(texts)
    assert kept == [0, 7]
    assert dropped == {"degenerate": 5, "duplicate": 2}
    assert is_degenerate("") and not is_degenerate("what city is the capital of france ?")


def test_prompt_plan_cycles_labels_and_varies_templates():
    plan = prompt_plan("movie review", ["is negative", "is positive"], 40, seed=0)
    assert [label for _, label in plan[:4]] == [0, 1, 0, 1]
    assert all(("is negative" in p) == (label == 0) for p, label in plan)
    assert len({p for p, _ in plan}) > 20


class InterruptingLM:
    """Wraps a LanguageModel and fails on its second call, like a killed run."""

    def __init__(self, lm):
        self.lm, self.calls = lm, 0

    def sample(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.lm.sample(*args, **kwargs)


def test_generate_resumes_and_writes_text_prompt_and_logits(tmp_path, tiny_lm, tiny_model):
    options = dict(teacher=str(tiny_model), describe="movie review", generator=str(tiny_lm), count=24, chunk_size=8,
                   max_new_tokens=8, batch_size=4, min_words=1, cache_dir=str(tmp_path / "cache"), teacher_bf16=False)
    straight = generate(GenerateConfig(out=str(tmp_path / "a.parquet"), **options))
    lm = LanguageModel.load(str(tiny_lm))
    with pytest.raises(KeyboardInterrupt):
        generate(GenerateConfig(out=str(tmp_path / "b.parquet"), **options), language_model=InterruptingLM(lm))
    assert (len(list((tmp_path / "b.parquet.partial").glob("chunk-*.json"))) == 1
            and not (tmp_path / "b.parquet").exists())
    resumed = generate(GenerateConfig(out=str(tmp_path / "b.parquet"), **options), language_model=lm)
    a, b = pq.read_table(tmp_path / "a.parquet").to_pydict(), pq.read_table(tmp_path / "b.parquet").to_pydict()
    assert a == b and straight["kept"] == resumed["kept"] == len(a["text"]) > 0
    assert set(a["label_hint"]) <= {"label0", "label1"} and all(len(row) == 2 for row in a["teacher_logits"])
    assert all("movie review" in p for p in a["prompt"])
    assert json.loads((tmp_path / "a.json").read_text())["prompts"] == 24
    assert straight["chunks_resumed"] == 0 and resumed["chunks_resumed"] == 1  # of 3
    assert straight["sampling_seconds"] > 0 and resumed["sampling_seconds"] > 0


def test_generate_then_distill_through_the_cli(tmp_path, tiny_lm, tiny_model, sentiment_tsv, capsys):
    generated = tmp_path / "gen.parquet"
    code = main(["generate", "--teacher", str(tiny_model), "--describe", "movie review",
                 "--labels", "negative,positive", "--generator", str(tiny_lm), "--count", "40",
                 "--max-new-tokens", "10", "--min-words", "1", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(generated), "--no-teacher-bf16"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    common = ["distill", "--teacher", str(tiny_model), "--method", "generate", "--generated", str(generated),
              "--eval-data", str(sentiment_tsv), "--cache-dir", str(tmp_path / "cache"), "--steps", "4",
              "--batch-size", "4", "--heldout", "2", "--student-options", "embedding_dim=8,hidden_size=8",
              "--no-teacher-bf16"]
    assert main([*common, "--augment", "0", "--out", str(tmp_path / "plain")]) == 0
    run = json.loads((tmp_path / "plain" / "run.json").read_text())
    assert run["method"] == "generate" and run["transfer_info"]["generated"] == str(generated)
    assert run["teacher_inputs_labelled"] == 8  # only the evaluation set: the generated texts came labelled
    assert main([*common, "--out", str(tmp_path / "augmented")]) == 0  # default: 4 variants of each text
    info = json.loads((tmp_path / "augmented" / "run.json").read_text())["transfer_info"]
    assert info["generated_texts"] < info["pool"] <= 5 * info["generated_texts"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"sentence number {i} of a corpus about films and plots .\n" for i in range(60)))
    assert main([*common, "--augment", "0", "--ood", str(corpus), "--transfer-size", "100",
                 "--out", str(tmp_path / "mixed")]) == 0
    run = json.loads((tmp_path / "mixed" / "run.json").read_text())
    generated_kept = run["transfer_info"]["classes_after"]
    assert sum(generated_kept.values()) < run["transfer_size"] <= 100  # corpus sentences fill what generation leaves
    assert run["transfer_info"]["ood"]["corpora"] == [str(corpus)] and "+ ood:" in run["transfer"]
    films = [f"the film number {i} had a fun plot and a great cast ." for i in range(30)]
    chemistry = [f"the acid number {i} reacts with the metal oxide in water ." for i in range(30)]
    corpus.write_text("\n".join(x for pair in zip(films, chemistry) for x in pair) + "\n")
    assert main([*common, "--augment", "0", "--ood", str(corpus), "--ood-nearest", "0.5", "--transfer-size", "100",
                 "--out", str(tmp_path / "nearest")]) == 0
    info = json.loads((tmp_path / "nearest" / "run.json").read_text())["transfer_info"]["ood"]
    assert info["sentences"] == 30  # the half nearest the generated texts
    code = main([*common, "--ood", str(corpus), "--ood-nearest", "0", "--out", str(tmp_path / "none")])
    assert code == 2 and "--ood-nearest 0.0 is not a fraction" in capsys.readouterr().err
    code = main([*common, "--ood-nearest", "0.5", "--out", str(tmp_path / "no-corpus")])
    assert code == 2 and "use it with --method generate --ood" in capsys.readouterr().err


def test_generate_errors_are_clear(tmp_path, tiny_model, capsys):
    code = main(["generate", "--teacher", str(tiny_model), "--out", str(tmp_path / "x.parquet")])
    assert code == 2 and "--describe" in capsys.readouterr().err
    code = main(["generate", "--teacher", str(tiny_model), "--describe", "review", "--labels", "a,b,c",
                 "--out", str(tmp_path / "x.parquet")])
    assert code == 2 and "3 names but the teacher has 2 labels" in capsys.readouterr().err
    code = main(["distill", "--teacher", str(tiny_model), "--method", "generate", "--out", str(tmp_path / "s")])
    assert code == 2 and "--generated FILE" in capsys.readouterr().err


def test_fine_tuning_lowers_the_lm_loss_on_the_few_shot_examples(tiny_lm):
    lm = LanguageModel.load(str(tiny_lm))
    prompts = ["write a review that is positive", "write a review that is negative"] * 4
    responses = ["the movie was good fun", "the plot was boring and awful"] * 4
    before = lm.response_loss(prompts, responses)
    history = lm.finetune(prompts, responses, epochs=10, lr=3e-3, batch_size=4)
    assert lm.response_loss(prompts, responses) < 0.7 * before and history["train"][-1] < history["train"][0]
    assert history["heldout"] == [] and len(history["train"]) == 10


def test_fine_tuning_stops_at_the_epoch_the_heldout_loss_is_lowest(tiny_lm):
    """Trained to recite one review, the LM grows worse on another: it stops there and keeps its best weights."""
    lm = LanguageModel.load(str(tiny_lm))
    heldout = (["write a review that is positive"] * 2, ["the plot was boring and awful"] * 2)
    history = lm.finetune(["write a review that is positive"] * 8, ["the movie was good fun"] * 8, epochs=10,
                          lr=3e-3, batch_size=4, heldout=heldout)
    losses = history["heldout"]
    assert len(losses) == len(history["train"]) + 1 < 11  # the loss before training, then one per epoch run
    assert losses[-1] >= min(losses[:-1])  # it stopped at the first epoch that did not lower it
    assert lm.response_loss(*heldout) == pytest.approx(min(losses), rel=1e-5)  # the best epoch's weights


def test_bf16_sampling_uses_the_fine_tuned_weights(tiny_lm):
    lm = LanguageModel.load(str(tiny_lm), bf16=True)
    before = lm.sampling_model()
    assert before.dtype == torch.bfloat16 and lm.model.dtype == torch.float32 and lm.sampling_model() is before
    lm.finetune(["write a review that is positive"] * 4, ["the movie was good fun"] * 4, epochs=1, lr=1e-2)
    after = lm.sampling_model()
    assert after is not before
    for name, weight in lm.model.named_parameters():
        torch.testing.assert_close(after.get_parameter(name), weight.to(torch.bfloat16), rtol=0, atol=0)


def test_low_data_generate_and_distill(tmp_path, tiny_lm, tiny_model, sentiment_tsv):
    report = generate(GenerateConfig(
        teacher=str(tiny_model), describe="movie review", labels="negative,positive", generator=str(tiny_lm), count=16,
        max_new_tokens=8, batch_size=8, min_words=1, few_shot=str(sentiment_tsv), lm_epochs=2, lm_lr=1e-3,
        lm_heldout=0.25, lm_keywords=False, cache_dir=str(tmp_path / "cache"), teacher_bf16=False,
        out=str(tmp_path / "gen.parquet")))
    assert (report["finetuning"]["examples"] == 8 and report["finetuning"]["heldout_examples"] == 2
            and report["finetuning"]["loss_after"] < report["finetuning"]["loss_before"])
    assert len(report["finetuning"]["heldout_losses"]) == len(report["finetuning"]["epoch_losses"]) + 1
    prompts = pq.read_table(tmp_path / "gen.parquet").column("prompt").to_pylist()
    assert not any("about" in p or "mentioning" in p for p in prompts)  # --no-lm-keywords: no topics

    from zskd.distill import DistillConfig, distill

    _, run = distill(DistillConfig(
        teacher=str(tiny_model), method="generate", generated=str(tmp_path / "gen.parquet"),
        few_shot=str(sentiment_tsv), out=str(tmp_path / "student"), cache_dir=str(tmp_path / "cache"), steps=3,
        batch_size=4, heldout=2, student_options="embedding_dim=8,hidden_size=8", teacher_bf16=False))
    assert run["few_shot_examples"] == 8
    assert "8 labelled examples" in (tmp_path / "student" / "README.md").read_text()
    # the 8 texts and their variants lead the transfer set; without them it is that much smaller
    assert 8 < run["transfer_info"]["few_shot_texts"] <= 8 * 5
    _, without = distill(DistillConfig(
        teacher=str(tiny_model), method="generate", generated=str(tmp_path / "gen.parquet"),
        few_shot=str(sentiment_tsv), few_shot_transfer=False, out=str(tmp_path / "without"),
        cache_dir=str(tmp_path / "cache"), steps=3, batch_size=4, heldout=2,
        student_options="embedding_dim=8,hidden_size=8", teacher_bf16=False))
    assert "few_shot_texts" not in without["transfer_info"]
    assert without["transfer_size"] == run["transfer_size"] - run["transfer_info"]["few_shot_texts"]


def test_lm_keywords_name_a_word_of_each_example_then_of_the_corpus(tmp_path, tiny_lm, tiny_model, sentiment_tsv):
    # 300 words in every line are the corpus's most frequent, so only the three rare ones may be sampling keywords
    common = ["".join(letters) for letters in itertools.product("bcdfghklmnp", repeat=3)][:300]
    lines = [" ".join(common[(7 * i + j) % 300] for j in range(12)) for i in range(200)]
    lines += [f"{rare} {common[0]} {common[1]} {common[2]}" for rare in ("zebra", "comet", "violin")]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    report = generate(GenerateConfig(
        teacher=str(tiny_model), describe="movie review", labels="negative,positive", generator=str(tiny_lm), count=12,
        max_new_tokens=8, batch_size=4, min_words=1, few_shot=str(sentiment_tsv), lm_epochs=1, lm_keywords=True,
        ood=str(corpus), cache_dir=str(tmp_path / "cache"), teacher_bf16=False, out=str(tmp_path / "gen.parquet")))
    examples = [line.split("\t")[1] for line in sentiment_tsv.read_text().splitlines()[1:]]
    assert all(word in text.split() and len(word) >= 3
               for word, text in zip(report["finetuning"]["keywords"], examples, strict=True))
    prompts = pq.read_table(tmp_path / "gen.parquet").column("prompt").to_pylist()
    named = [p.split("about ")[-1].split("mentioning ")[-1].split(".")[0] for p in prompts]
    assert prompts and set(named) <= {"zebra", "comet", "violin"}


def test_generated_pairs_ask_about_corpus_sentences_and_distill_a_pair_student(tmp_path, tiny_lm, tiny_model,
                                                                               ood_file, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"the film number {i} had a long plot and a very large cast .\n" for i in range(40)))
    generated = tmp_path / "pairs.parquet"
    code = main(["generate", "--teacher", str(tiny_model), "--pairs", "--ood", str(corpus), "--generator",
                 str(tiny_lm), "--count", "20", "--max-new-tokens", "8", "--min-words", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(generated), "--no-teacher-bf16"])
    out = capsys.readouterr().out
    assert code == 0 and "pairs to" in out and "teacher classes of the paraphrase pairs" in out
    table = pq.read_table(generated).to_pydict()
    assert len(table["text"]) == len(table["text_pair"]) == len(table["relation"]) > 0
    for first, prompt, relation in zip(table["text"], table["prompt"], table["relation"]):
        assert first.startswith("the film number") and f'"{first}"' in prompt
        assert prompt == PAIR_RELATIONS[relation].format(sentence=first)
    report = json.loads((tmp_path / "pairs.json").read_text())
    assert sum(sum(c.values()) for c in report["teacher_classes_by_relation"].values()) == len(table["text"])

    common = ["distill", "--teacher", str(tiny_model), "--method", "generate", "--generated", str(generated),
              "--cache-dir", str(tmp_path / "cache"), "--steps", "2", "--batch-size", "4", "--heldout", "2",
              "--no-teacher-bf16"]
    assert main([*common, "--pairs", "--ood", str(ood_file), "--transfer-size", "40", "--out",
                 str(tmp_path / "s")]) == 0
    run = json.loads((tmp_path / "s" / "run.json").read_text())
    assert run["student"] == "pair-bilstm" and run["transfer_info"]["generated_texts"] == len(table["text"])
    assert run["config"]["augment"] == 2  # the rule-made fill is built as `ood` builds pairs
    assert main([*common, "--out", str(tmp_path / "single")]) == 2
    assert "holds sentence pairs but the teacher reads single texts" in capsys.readouterr().err
    code = main(["generate", "--teacher", str(tiny_model), "--pairs", "--describe", "review",
                 "--out", str(tmp_path / "x.parquet")])
    assert code == 2 and "--task, --describe and --few-shot do not apply" in capsys.readouterr().err


def test_generate_with_a_teacher_known_by_its_answers(tmp_path, tiny_lm, tiny_model, sentiment_tsv, monkeypatch,
                                                      capsys):
    """`zskd generate` labels with a function (as with an endpoint) in the class order it is given, and `distill
    --method generate` reads the file with the same teacher."""
    (tmp_path / "rule_teacher.py").write_text(
        "import numpy as np\n"
        "def classify(inputs):\n"
        "    return np.array([[0.3, 0.7] if len(x.split()) % 2 else [0.8, 0.2] for x in inputs])\n")
    monkeypatch.chdir(tmp_path)
    teacher = ["--teacher-function", "rule_teacher:classify", "--teacher-labels", "negative,positive"]
    generated = tmp_path / "gen.parquet"
    assert main(["generate", *teacher, "--describe", "movie review", "--generator", str(tiny_lm), "--count", "16",
                 "--max-new-tokens", "10", "--min-words", "1", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(generated)]) == 0
    table = pq.read_table(generated).to_pydict()
    expected = [np.log([0.3, 0.7]) if len(t.split()) % 2 else np.log([0.8, 0.2]) for t in table["text"]]
    expected = [row - row.mean() for row in expected]  # answered log-probabilities, centred per input
    assert np.allclose(table["teacher_logits"], expected, atol=1e-5)
    report = json.loads((tmp_path / "gen.json").read_text())
    assert report["teacher_classes"].keys() <= {"negative", "positive"} and report["config"]["teacher"] == ""
    assert main(["distill", *teacher, "--method", "generate", "--generated", str(generated), "--eval-data",
                 str(sentiment_tsv), "--cache-dir", str(tmp_path / "cache"), "--steps", "4", "--batch-size", "4",
                 "--heldout", "2", "--augment", "0", "--student-options", "embedding_dim=8,hidden_size=8",
                 "--student-base", str(tiny_model), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["generate", "--teacher-url", "http://127.0.0.1:9/x", *teacher, "--describe", "review",
                 "--out", str(tmp_path / "y.parquet")]) == 2
    assert "give one teacher" in capsys.readouterr().err


def test_own_texts_lead_the_transfer_set_and_a_share_of_each_batch_resumes_exactly(tmp_path, tiny_distill_config,
                                                                                   sentiment_tsv):
    """The --few-shot texts and the generated ones (before the out-of-domain fill) are the run's own texts;
    `own_text_fraction` draws part of every batch from them, and a resumed run draws what an uninterrupted one did."""
    import pyarrow as pa
    from safetensors.torch import load_file

    from conftest import assert_resuming_changes_nothing
    from zskd.data import DataError
    from zskd.distill import distill

    generated = tmp_path / "gen.parquet"
    pq.write_table(pa.table({"text": [f"the film was {w} and the plot {v}" for w, v in
                                      itertools.product(("fun", "boring", "great"), ("ran", "sat", "is"))]}),
                   generated)

    def make(name, **options):  # 9 generated texts, 8 labelled ones, out-of-domain sentences up to 60
        return tiny_distill_config(name, method="generate", generated=str(generated), few_shot=str(sentiment_tsv),
                                   augment=0, **options)

    _, run = distill(make("default"))
    assert run["config"]["own_text_fraction"] == 0.25  # generate's default; 0 for methods of one kind of input
    assert run["config"]["augment_kinds"] == "part,near-copy,other-words,other-topic"  # generate's default
    assert run["transfer_info"]["few_shot_texts"] == 8 and run["transfer_info"]["own_texts"] == 8 + 9
    _, run = distill(make("plain", own_text_fraction=0.0))
    assert run["transfer_size"] == 8 + 60 and "ood" in run["transfer_info"]  # the labelled texts lead the budget
    assert_resuming_changes_nothing(make, tmp_path, own_text_fraction=0.5)
    own = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    plain = load_file(tmp_path / "plain" / "last" / "model.safetensors")
    assert any(not torch.equal(own[name], plain[name]) for name in own)  # the option changes the batches
    with pytest.raises(DataError, match="keep their sum under 1"):
        distill(make("full", own_text_fraction=0.5, hard_fraction=0.5))
