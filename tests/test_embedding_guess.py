"""Method `embedding-guess` (AS-DFD) on a tiny teacher: guessing, the fixed [CLS]/[SEP] rows, the adversarial
self-supervised step, how students read pseudo-inputs, and the method end to end (outputs, resuming)."""

import json

import pytest
import torch

from conftest import assert_resuming_changes_nothing
from zskd.cli import main
from zskd.methods.embedding_guess import (
    EmbeddingGuesser,
    EmbeddingGuessObjective,
    EmbeddingGuessOptions,
    mean_similarity,
)
from zskd.students import create_student, parse_student_options
from zskd.teacher import Teacher


@pytest.fixture
def teacher(rule_teacher):
    """A teacher whose decisions depend on its input (a random tiny one answers about 0.5 for anything)."""
    return Teacher.from_pretrained(str(rule_teacher), bf16=False)


def target_confidence(guesser, pseudo, targets) -> float:
    with torch.no_grad():
        probabilities = torch.softmax(guesser.teacher_logits(pseudo), -1)
    return float(probabilities[torch.arange(len(targets)), targets].mean())


def make_guesser(teacher, pairs=False, **options) -> EmbeddingGuesser:
    """A guesser over the tiny teacher's vocabulary, candidates drawn uniformly unless asked: over 47 words the
    default zipf prior fills the 16 candidates of a position with the same few frequent ones, leaving the guessing
    nothing to choose between (over a real vocabulary it does not)."""
    options = {"word_prior": "uniform", **options}
    return EmbeddingGuesser(EmbeddingGuessOptions(**options), teacher, list(range(len(teacher.tokenizer))), pairs)


def test_guessing_raises_the_teachers_confidence_in_the_target_class(teacher):
    targets = torch.tensor([0, 1] * 8)
    confidence = {}
    for steps in (0, 3):
        guesser = make_guesser(teacher, guess_steps=steps, diversity=0.0)
        torch.manual_seed(0)  # the same starting point for both
        pseudo = guesser.guess(targets, length=6)
        confidence[steps] = target_confidence(guesser, pseudo, targets)
    assert confidence[3] > confidence[0] + 0.1, confidence


def test_the_diversity_term_spreads_the_batch(teacher):
    targets = torch.zeros(8, dtype=torch.long)
    similarity = {}
    for diversity in (0.0, 5.0):
        guesser = make_guesser(teacher, guess_steps=20, diversity=diversity)
        torch.manual_seed(0)
        similarity[diversity] = float(mean_similarity(guesser.guess(targets, length=6).embeddings(guesser.table)
                                                      .mean(1)))
    assert similarity[5.0] < similarity[0.0] - 0.05, similarity


@pytest.mark.parametrize("pairs", [False, True])
def test_cls_and_sep_stay_the_teachers_rows(teacher, pairs):
    guesser = make_guesser(teacher, pairs, guess_steps=5)
    pseudo = guesser.guess(torch.tensor([0, 1, 0, 1]), length=6).embeddings(guesser.table)
    embeds, segments, is_pseudo = guesser.layout(pseudo, guesser.table[guesser.special["cls"]],
                                                 guesser.table[guesser.special["sep"]])
    table = teacher.embedding_matrix.detach()
    tokenizer = teacher.tokenizer
    assert torch.equal(embeds[:, 0], table[tokenizer.cls_token_id].expand(4, -1))
    assert torch.equal(embeds[:, -1], table[tokenizer.sep_token_id].expand(4, -1))
    assert torch.equal(embeds[is_pseudo].reshape(4, 6, -1), pseudo)
    assert int((~is_pseudo[0]).sum()) == (3 if pairs else 2)
    assert segments[0].tolist() == ([0] * 5 + [1] * 4 if pairs else [0] * 8)


def test_the_zipf_prior_draws_early_vocabulary_words_more_often(teacher):
    torch.manual_seed(0)
    ids = {prior: make_guesser(teacher, word_prior=prior).initial(64, 8).candidates.float().mean()
           for prior in ("uniform", "zipf")}
    assert ids["zipf"] < 0.7 * ids["uniform"], ids  # student ids here are the teacher's (the full vocabulary)


def test_pseudo_inputs_are_real_words_the_teacher_labels_the_same(teacher):
    guesser = make_guesser(teacher, guess_steps=5)
    pseudo = guesser.guess(torch.tensor([0, 1, 0, 1]), length=6)
    words = pseudo.top_words()
    assert set(words.flatten().tolist()) <= set(guesser.words.tolist())
    tokenizer = teacher.tokenizer
    ids = [[tokenizer.cls_token_id, *row, tokenizer.sep_token_id] for row in words.tolist()]
    with torch.no_grad():
        from_ids = teacher.model(input_ids=torch.tensor(ids)).logits
    torch.testing.assert_close(guesser.teacher_logits(pseudo).detach(), from_ids, atol=1e-4, rtol=1e-4)


def make_objective(tmp_path, tiny_model, teacher, student_type="bilstm", **options):
    from zskd.distill import DistillConfig
    from zskd.methods.base import Setup

    vocabulary = list(range(len(teacher.tokenizer)))
    student_options = "embedding_dim=16,hidden_size=16" if student_type == "bilstm" else None
    student = create_student(student_type, teacher, vocabulary, parse_student_options(student_type, student_options))
    options = {"word_prior": "uniform", **options}  # as `make_guesser`, for the tiny vocabulary
    config = DistillConfig(teacher=str(tiny_model), pairs=False, embedding_guess=EmbeddingGuessOptions(**options))
    setup = Setup(config=config, teacher=teacher, student=student, vocabulary=vocabulary, token_counts={},
                  teacher_ids=[], segments=[], shots=None, work=tmp_path, is_main_process=True)
    return EmbeddingGuessObjective(setup), student


def test_the_adversarial_step_raises_the_self_supervised_loss(tmp_path, tiny_model, teacher):
    """Over six batches (a word switch is discrete, so one batch can go either way): the loss the step ascends,
    with the masks it was given, rises in at least five and by half again on average; the teacher still backs the
    targets; only the pseudo-inputs move."""
    ratios = []
    for seed in range(6):
        torch.manual_seed(seed)
        objective, student = make_objective(tmp_path, tiny_model, teacher, adversarial_steps=10)
        student.eval()  # no dropout: the loss is a function of the pseudo-inputs and the masks alone
        with torch.no_grad():  # a student with opinions (an untrained one answers about the same for anything)
            for parameter in student.parameters():
                parameter.add_(torch.randn_like(parameter))
        targets = torch.tensor([0, 1] * 8)
        pseudo = objective.guesser.guess(targets, length=8)
        chosen = objective.masked_positions(pseudo)
        before = {k: v.clone() for k, v in student.state_dict().items()}
        pushed = objective.adversarial_step(student, pseudo, targets, chosen)
        with torch.no_grad():
            ratios.append(float(objective.consistency(student, pushed, chosen) / objective.consistency(student, pseudo,
                                                                                                      chosen)))
        assert target_confidence(objective.guesser, pushed, targets) >= target_confidence(objective.guesser, pseudo,
                                                                                         targets) - 0.1
        for name, tensor in student.state_dict().items():
            assert torch.equal(tensor, before[name]), name
    assert sum(r > 1 for r in ratios) >= 5 and float(torch.tensor(ratios).log().mean().exp()) > 1.3, ratios


@pytest.mark.parametrize("student_type", ["bilstm", "transformer"])
def test_students_read_pseudo_inputs_as_the_real_tokens_and_learn_their_embeddings(
        tmp_path, tiny_model, teacher, student_type):
    objective, student = make_objective(tmp_path, tiny_model, teacher, student_type)
    student.eval()
    pseudo = objective.guesser.guess(torch.tensor([0, 1, 0, 1]), length=5)
    inputs, _ = objective.student_inputs(pseudo)
    special = objective.guesser.special
    ids = torch.tensor([[special["cls"], *row, special["sep"]] for row in pseudo.top_words().tolist()])
    from_embeddings = student(**inputs)
    torch.testing.assert_close(from_embeddings, student(input_ids=ids, attention_mask=torch.ones_like(ids),
                                                        token_type_ids=torch.zeros_like(ids)), atol=1e-5, rtol=1e-5)
    from_embeddings.sum().backward()  # the guessed batch trains the rows of the words it used, and no others
    used = student.word_embeddings.weight.grad.abs().sum(1) > 0
    assert used[ids.flatten()].all() and int(used.sum()) == len(set(ids.flatten().tolist()))


def test_embedding_guess_end_to_end(tmp_path, tiny_model, sentiment_tsv):
    out = tmp_path / "guess"
    code = main(["distill", "--teacher", str(tiny_model), "--method", "embedding-guess", "--out", str(out),
                 "--eval-data", str(sentiment_tsv), "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "60",
                 "--min-words", "2", "--steps", "8", "--batch-size", "8", "--eval-every", "4", "--heldout", "10",
                 "--student-options", "embedding_dim=16,hidden_size=16", "--no-teacher-bf16",
                 "--embedding-guess-batch-size", "4", "--embedding-guess-max-tokens", "6"])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "embedding-guess" and run["config"]["embedding_guess"]["batch_size"] == 4
    assert run["transfer"].startswith("random:")  # the default text: no corpus read
    guesses = [json.loads(line) for line in (out / "embedding_guesses.jsonl").read_text().splitlines()]
    assert sorted({g["step"] for g in guesses}) == [3, 7] and len(guesses) == 2 * 4
    assert all(0.5 <= g["confidence"] <= 1.0 and g["teacher_label"] in ("label0", "label1") for g in guesses)
    assert "`embedding_guesses.jsonl`" in (out / "README.md").read_text()


def test_embedding_guess_resume_gives_the_same_student(tmp_path, tiny_distill_config):
    options = EmbeddingGuessOptions(text="ood", every=1, batch_size=4, max_tokens=6)
    assert_resuming_changes_nothing(tiny_distill_config, tmp_path, "embedding_guesses.jsonl", method="embedding-guess",
                                    embedding_guess=options)


def test_bad_options_are_clear_errors(tmp_path, tiny_model, capsys):
    base = ["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x"), "--method", "embedding-guess"]
    assert main([*base, "--embedding-guess-text", "wiki"]) == 2
    assert "unknown --embedding-guess-text 'wiki'" in capsys.readouterr().err
    assert main([*base, "--embedding-guess-min-tokens", "9", "--embedding-guess-max-tokens", "4"]) == 2
    assert "give 1 <= min <= max" in capsys.readouterr().err
    assert main([*base, "--embedding-guess-word-prior", "frequent"]) == 2
    assert "choose uniform or zipf" in capsys.readouterr().err
