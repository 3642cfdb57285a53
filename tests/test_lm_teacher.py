"""A causal LM as a zero-shot teacher: verbaliser probabilities against a hand-written reference, and a student
distilled from it through the CLI."""

import json

import numpy as np
import pytest
import torch

from zskd.cli import main
from zskd.data import DataError
from zskd.generation import LanguageModel
from zskd.lm_teacher import LanguageModelScorer


def test_label_probabilities_are_the_verbalisers_next_token_probabilities(tiny_lm):
    lm = LanguageModel.load(str(tiny_lm), bf16=False)
    scorer = LanguageModelScorer(lm, ["negative", "positive", "fun"], prompt="review : {text} . is it {labels}",
                                 batch_size=2)
    texts = ["the movie was good", "awful", "a very boring film , and the plot was bad"]
    probabilities = scorer(texts)  # padded batches of different lengths
    for text, row in zip(texts, probabilities):
        ids = lm.tokenizer.encode(f"review : {text} . is it negative, positive, fun", add_special_tokens=False)
        with torch.no_grad():
            last = lm.model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
        words = [lm.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("negative", "positive", "fun")]
        np.testing.assert_allclose(row, last[words].softmax(-1).numpy(), atol=1e-5)
    pairs = LanguageModelScorer(lm, ["label0", "label1"], pairs=True)([("a cat sat", "on the mat")])
    assert pairs.shape == (1, 2) and abs(pairs.sum() - 1) < 1e-6
    with pytest.raises(DataError, match="begin with the same token"):
        LanguageModelScorer(lm, ["fun", "fun"])
    with pytest.raises(DataError, match="must contain {text} and {text_pair}"):
        LanguageModelScorer(lm, ["label0", "label1"], prompt="{text}", pairs=True)


def test_distilling_from_a_language_model_teacher(tmp_path, tiny_lm, tiny_model, ood_file, sentiment_tsv, capsys):
    common = ["distill", "--teacher-lm", str(tiny_lm), "--ood", str(ood_file), "--out", str(tmp_path / "lm")]
    assert main(common) == 2
    assert "--teacher-lm needs the label names: pass --teacher-labels" in capsys.readouterr().err
    assert main([*common, "--teacher-labels", "a,b", "--teacher-verbalisers", "fun"]) == 2
    assert "--teacher-verbalisers gives 1 words for 2 --teacher-labels" in capsys.readouterr().err
    assert main([*common, "--teacher-labels", "0,1", "--teacher-verbalisers", "negative,positive",
                 "--student-base", str(tiny_model), "--eval-data", str(sentiment_tsv), "--transfer-size", "40",
                 "--min-words", "2", "--steps", "2", "--batch-size", "8", "--heldout", "8",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    run = json.loads((tmp_path / "lm" / "run.json").read_text())
    assert run["teacher"].startswith(f"lm:{tiny_lm}|") and run["compression"] is None
    assert run["teacher_cost"]["texts"] >= 40 and "eval" in run
