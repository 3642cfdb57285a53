"""Method `adversarial` on a tiny random teacher: the straight-through path, the generator's objective, pairs, and
the method end to end (outputs, resuming)."""

import json

import numpy as np
import torch

from conftest import OOD_SENTENCES, assert_resuming_changes_nothing
from zskd.cli import main
from zskd.methods.adversarial import AdversarialOptions, Adversary, choose_positions
from zskd.students import create_student, parse_student_options
from zskd.teacher import Teacher


def make_adversary(tiny_model, **overrides):
    teacher = Teacher.from_pretrained(str(tiny_model), bf16=False)
    kept = list(range(len(teacher.tokenizer)))
    student = create_student("bilstm", teacher, kept,
                             parse_student_options("bilstm", "embedding_dim=16,hidden_size=16"))
    counts = {t: 1 for t in kept}
    return Adversary(AdversarialOptions(**overrides), 2.0, teacher, student, kept, counts), teacher, student


def batch(student, inputs):
    encoded = student.encode(inputs)
    return student.collate(encoded["input_ids"], encoded["token_type_ids"])


def test_gradient_reaches_the_generator_through_the_straight_through_path(tiny_model):
    adversary, _, student = make_adversary(tiny_model)
    inputs = batch(student, OOD_SENTENCES[:8])
    torch.manual_seed(0)
    positions, one_hot = adversary.propose(inputs)
    assert positions.any(1).all(), "every input gets at least one perturbed position"
    assert torch.equal(one_hot.sum(-1), torch.ones(len(one_hot))) and set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert not torch.isin(one_hot.argmax(-1),
                          adversary.banned_student_ids).any(), "no [SEP], [CLS], [PAD], [UNK], [MASK]"
    adversary._divergence(inputs, positions, one_hot).backward()
    for name, parameter in adversary.generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_generator_steps_increase_the_divergence_they_maximise(tiny_model):
    adversary, _, student = make_adversary(tiny_model, lr=0.05, diversity=0.0)
    student.eval()
    inputs = batch(student, OOD_SENTENCES[:16])
    student_before = {k: v.clone() for k, v in student.state_dict().items()}

    def mean_divergence() -> float:  # the same positions and Gumbel noise before and after
        torch.manual_seed(123)
        with torch.no_grad():
            return float(np.mean([adversary._divergence(inputs, *adversary.propose(inputs)).item() for _ in range(8)]))

    before = mean_divergence()
    torch.manual_seed(1)
    for _ in range(30):
        adversary.generator_step(inputs)
    # a random 2-layer teacher barely reacts to single tokens, so the gain is small; stepping down instead loses ~2%
    assert mean_divergence() > 1.01 * before
    for name, tensor in student.state_dict().items():  # the generator's steps leave the student alone
        assert torch.equal(tensor, student_before[name]), name


def test_the_diversity_term_keeps_the_generator_from_collapsing_onto_one_token(tiny_model):
    distinct = {}
    for diversity in (0.0, 1.0):
        torch.manual_seed(0)
        adversary, _, student = make_adversary(tiny_model, lr=0.05, diversity=diversity)
        inputs = batch(student, OOD_SENTENCES[:16])
        for _ in range(20):
            adversary.generator_step(inputs)
        torch.manual_seed(5)
        distinct[diversity] = len(adversary.propose(inputs)[1].argmax(-1).unique())
    assert distinct[0.0] <= 2 and distinct[1.0] >= 10, distinct


def test_pairs_keep_special_tokens_and_segment_ids(tiny_model):
    pairs = [("the movie was good", "a fine film"), ("what city", "the dog ran on the mat"), ("i hated it", "fun")] * 4
    for segments in ("any", "both", "first", "second"):
        adversary, teacher, student = make_adversary(tiny_model, segments=segments, mask_rate=0.5)
        inputs = batch(student, pairs)
        torch.manual_seed(0)
        perturbed = adversary.perturb(inputs)
        changed = perturbed["positions"]
        special_ids = [teacher.tokenizer.cls_token_id, teacher.tokenizer.sep_token_id, teacher.tokenizer.pad_token_id]
        special = torch.isin(inputs["input_ids"], torch.tensor(special_ids))
        assert not (changed & special).any()
        assert torch.equal(perturbed["input_ids"][special], inputs["input_ids"][special])
        assert torch.equal(perturbed["token_type_ids"], inputs["token_type_ids"])
        assert torch.equal(perturbed["input_ids"][~changed], inputs["input_ids"][~changed])
        in_first = (changed & (inputs["token_type_ids"] == 0)).any(1)
        in_second = (changed & (inputs["token_type_ids"] == 1)).any(1)
        if segments == "first":
            assert in_first.all() and not in_second.any()
        if segments == "second":
            assert in_second.all() and not in_first.any()
        if segments == "both":
            assert (in_first & in_second).any()
        if segments == "any":
            assert (in_first & ~in_second).any() and (in_second & ~in_first).any()
        assert perturbed["teacher_logits"].shape == (len(pairs), 2)


def test_choose_positions_respects_the_rate():
    special = torch.zeros(200, 50, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    torch.manual_seed(0)
    chosen = choose_positions(special, torch.zeros(200, 50, dtype=torch.long), 0.3)
    assert abs(chosen.float().mean().item() - 0.3 * 48 / 50) < 0.01 and not (chosen & special).any()


def test_adversarial_distillation_end_to_end(tmp_path, tiny_model, ood_file, sentiment_tsv):
    out = tmp_path / "adv"
    code = main(["distill", "--teacher", str(tiny_model), "--method", "adversarial", "--ood", str(ood_file),
                 "--out", str(out), "--eval-data", str(sentiment_tsv), "--cache-dir", str(tmp_path / "cache"),
                 "--transfer-size", "60", "--min-words", "2", "--steps", "8", "--batch-size", "8", "--eval-every", "4",
                 "--heldout", "10", "--student-options", "embedding_dim=16,hidden_size=16", "--no-teacher-bf16",
                 "--adversarial-mask-rate", "0.4", "--adversarial-generator-steps", "2"])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "adversarial" and run["config"]["adversarial"]["mask_rate"] == 0.4
    assert run["config"]["adversarial"]["generator_steps"] == 2 and run["config"]["adversarial"]["every"] == 2
    assert "`adversarial_samples.jsonl`" in (out / "README.md").read_text()
    samples = [json.loads(line) for line in (out / "adversarial_samples.jsonl").read_text().splitlines()]
    assert all("[[" in s["text"] for s in samples)
    # written on the perturbing step (every 2nd) before each evaluation (every 4th): steps 2 and 6, logged as 3, 7
    assert sorted({s["step"] for s in samples}) == [3, 7] and len(samples) <= 2 * 8  # at most a batch each
    assert {s["teacher_label"] for s in samples} <= {"label0", "label1"}


def test_adversarial_resume_gives_the_same_student(tmp_path, tiny_distill_config):
    options = AdversarialOptions(every=1, generator_steps=2)
    assert_resuming_changes_nothing(tiny_distill_config, tmp_path, "adversarial_samples.jsonl", method="adversarial",
                                    adversarial=options)


def test_unknown_pair_segments_is_a_clear_error(tmp_path, tiny_model, capsys):
    code = main(["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x"), "--method", "adversarial",
                 "--adversarial-segments", "middle"])
    assert code == 2 and "unknown --adversarial-segments 'middle'" in capsys.readouterr().err
