"""A causal LM as a zero-shot teacher: verbaliser probabilities against a hand-written reference, and a student
distilled from it through the CLI."""

import json

import numpy as np
import pytest
import torch

from zskd.cli import main
from zskd.data import DataError
from zskd.generation import LanguageModel
from zskd.lm_teacher import LanguageModelScorer, OpenAIScorer


def test_label_probabilities_are_the_verbalisers_next_token_probabilities(tiny_lm):
    lm = LanguageModel.load(str(tiny_lm), bf16=False)
    texts = ["the movie was good", "awful", "a very boring film , and the plot was bad"]
    # a prompt whose opening every input shares (read once, then reused), and one that opens with the input
    for prompt in ("review : is it {labels} ? {text} .", "{text} . is it {labels}"):
        scorer = LanguageModelScorer(lm, ["negative", "positive", "fun"], prompt=prompt, batch_size=2)
        probabilities = scorer(texts)  # padded batches of different lengths
        for text, row in zip(texts, probabilities):
            filled = prompt.format(text=text, labels="negative, positive, fun")
            ids = lm.tokenizer.encode(filled, add_special_tokens=False)
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


class FakeOpenAI:
    """A loopback OpenAI-compatible server whose 'model' answers "positive" when the prompt says good or fun:
    log-probabilities of the first answer token (chat and completions), or, with `logprobs=False`, sampled answers
    (7 of 10 the likely word)."""

    def __init__(self, logprobs: bool = True):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.logprobs, self.requests = logprobs, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, body))
                prompts = [body["messages"][0]["content"]] if "messages" in body else body["prompt"]
                prompts = [prompts] if isinstance(prompts, str) else prompts
                choices = [fake.choice(p, body, self.path.endswith("chat/completions"), i, k)
                           for i, p in enumerate(prompts) for k in range(body.get("n", 1))]
                data = json.dumps({"choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def expected(prompt: str) -> dict[str, float]:
        text = prompt.split("\n")[0]
        likely = "Positive" if ("good" in text or "fun" in text) else " negative"
        other = " negative" if likely == "Positive" else "Positive"
        return {likely: np.log(0.6), other: np.log(0.2), " maybe": np.log(0.2)}

    def choice(self, prompt, body, chat, index, sample):
        top = self.expected(prompt)
        if body.get("temperature", 0) > 0:  # sampled: 7 in 10 the likely word, the others the other label
            word = max(top, key=top.get) if sample % 10 < 7 else [t for t in top if t != max(top, key=top.get)][0]
            return {"index": index, "message": {"content": word}} if chat else {"index": index, "text": word}
        if not self.logprobs:
            return {"index": index, "message": {"content": "x"}} if chat else {"index": index, "text": "x"}
        if chat:
            top_logprobs = [{"token": t, "logprob": v} for t, v in top.items()]
            return {"index": index, "logprobs": {"content": [{"token": max(top, key=top.get),
                                                              "top_logprobs": top_logprobs}]}}
        return {"index": index, "logprobs": {"top_logprobs": [top]}}


def test_an_openai_compatible_server_as_the_teacher(tmp_path, tiny_model, ood_file, sentiment_tsv):
    fake = FakeOpenAI()
    texts = ["the movie was good", "awful", ("great fun", "a cat")]
    for chat in (True, False):
        scorer = OpenAIScorer(fake.url, "m", ["negative", "positive"], prompt="{text}\nsay {labels}", chat=chat)
        probabilities = scorer(texts[:2])
        np.testing.assert_allclose(probabilities, [[0.25, 0.75], [0.75, 0.25]], atol=1e-6)  # " maybe" is no label
        assert scorer.sampled == 0
    assert fake.requests[-1][0] == "/v1/completions" and len(fake.requests[-1][1]["prompt"]) == 2
    fake.server.shutdown()

    silent = FakeOpenAI(logprobs=False)
    scorer = OpenAIScorer(silent.url, "m", ["negative", "positive"], prompt="{text}\nsay {labels}")
    row = scorer(["the movie was good"])[0]  # 7 of 10 samples "Positive", 3 "negative", plus half a count each
    np.testing.assert_allclose(row, [3.5 / 11, 7.5 / 11], atol=1e-6)
    assert scorer.sampled == 1 and silent.requests[-1][1]["n"] == 10
    silent.server.shutdown()

    fake = FakeOpenAI()
    assert main(["distill", "--teacher-openai", fake.url, "--teacher-model", "m", "--teacher-labels", "0,1",
                 "--teacher-verbalisers", "negative,positive", "--student-base", str(tiny_model), "--ood",
                 str(ood_file), "--eval-data", str(sentiment_tsv), "--transfer-size", "40", "--min-words", "2",
                 "--steps", "2", "--batch-size", "8", "--heldout", "8", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "s")]) == 0
    run = json.loads((tmp_path / "s" / "run.json").read_text())
    assert run["teacher_cost"]["requests"] == run["teacher_cost"]["texts"]  # chat: one input a request
    assert all(path == "/v1/chat/completions" and body["model"] == "m" for path, body in fake.requests)
    fake.server.shutdown()
