"""A language model as a zero-shot teacher: no training, no data, only a prompt and one word per label.

    zskd distill --teacher-lm smollm2-135m --teacher-labels negative,positive --eval-task sst2 --out runs/sst2-lm
    zskd distill --teacher-lm my-llm-dir --teacher-labels yes,no --teacher-verbalisers Yes,No \
        --teacher-prompt 'Premise: {text}\nHypothesis: {text_pair}\nDoes the premise entail the hypothesis?' ...
    zskd distill --teacher-openai http://localhost:8080/v1 --teacher-model llama-3 --teacher-labels negative,positive

Each input fills `prompt` ({text}, and {text_pair} for sentence pairs; {labels} lists the verbalisers). The class
probabilities are the LM's probabilities of each label's verbaliser as the first token of its answer, renormalised
over the labels: the scoring of pattern-verbaliser pairs (Schick and Schütze, 2021). `LanguageModelScorer` runs a
causal LM in this process (the prompt sent as a chat turn where the LM has a chat template; the verbaliser's first
token with or without a leading space); `OpenAIScorer` asks an OpenAI-compatible server (llama.cpp, vLLM, Ollama,
hosted APIs) for the log-probabilities of the answer's first token, and where the server returns none, samples
answers and counts them. Distillation sees either as it sees an endpoint (`BlackBoxTeacher`): answers only.
"""

from __future__ import annotations

import copy
import inspect
from typing import Sequence

import numpy as np
import torch

from zskd.batching import sorted_batches
from zskd.black_box_teacher import JsonEndpoint
from zskd.data import DataError, TextInput

# The question first and the input last: every prompt then begins with the same tokens, read once (see
# `LanguageModelScorer`), and the packaged SmolLM2 answered SST-2 better so (77.0% of 200 dev sentences against 67.5%
# with the text first; TREC at chance either way) in 1.4-2.2x less time.
DEFAULT_PROMPT = "Which word describes the text best: {labels}? Answer with one word.\nText: {text}"
DEFAULT_PAIR_PROMPT = ("Which word describes how the second text relates to the first: {labels}? Answer with one "
                       "word.\nFirst text: {text}\nSecond text: {text_pair}")


def checked_prompt(prompt: str | None, pairs: bool) -> str:
    """`prompt`, or the default for texts or pairs, once it has the fields the inputs fill."""
    prompt = prompt or (DEFAULT_PAIR_PROMPT if pairs else DEFAULT_PROMPT)
    if "{text}" not in prompt or (pairs and "{text_pair}" not in prompt):
        raise DataError(f"--teacher-prompt must contain {{text}}{' and {text_pair}' if pairs else ''}")
    return prompt


def filled(prompt: str, item: TextInput, verbalisers: list[str]) -> str:
    """The prompt for one input."""
    labels = ", ".join(verbalisers)
    if isinstance(item, (tuple, list)):
        return prompt.format(text=item[0], text_pair=item[1], labels=labels)
    return prompt.format(text=item, labels=labels)


class LanguageModelScorer:
    """Inputs -> [N, K] label probabilities from a `zskd.generation.LanguageModel`'s next token after the prompt."""

    def __init__(self, lm, verbalisers: list[str], prompt: str | None = None, pairs: bool = False,
                 batch_size: int = 16):
        self.lm, self.verbalisers, self.batch_size = lm, verbalisers, batch_size
        self.prompt = checked_prompt(prompt, pairs)
        tokenizer = lm.tokenizer
        # [K, 2]: the first token of each verbaliser, bare and after a space
        self.token_ids = torch.tensor([[tokenizer.encode(form, add_special_tokens=False)[0]
                                        for form in (word, " " + word)] for word in verbalisers])
        # what this model's forward calls its key-value cache (transformers renamed past_key_values to cache)
        self.cache_argument = "cache" if "cache" in inspect.signature(lm.model.forward).parameters \
            else "past_key_values"
        firsts = self.token_ids[:, 0].tolist()
        if len(set(firsts)) < len(firsts):
            raise DataError(f"verbalisers {', '.join(verbalisers)} begin with the same token for this LM: give "
                            "--teacher-verbalisers that start differently")

    def prompts(self, batch: Sequence[TextInput]) -> list[str]:
        return [self.lm.format_prompt(filled(self.prompt, x, self.verbalisers)) for x in batch]

    @torch.inference_mode()
    def __call__(self, batch: Sequence[TextInput]) -> np.ndarray:
        from transformers import DynamicCache

        tokenizer, model = self.lm.tokenizer, self.lm.model
        encoded = tokenizer(self.prompts(batch), add_special_tokens=False)["input_ids"]
        # The tokens every prompt begins with (the chat template, the prompt's opening words) are read once and
        # their keys and values reused: about half of a short prompt, and the same numbers as reading it whole.
        shared = shared_prefix_length(encoded)
        prefix = None
        if shared:
            prefix = DynamicCache(config=model.config)
            model(input_ids=torch.tensor([encoded[0][:shared]]), use_cache=True, **{self.cache_argument: prefix})
        out = np.zeros((len(batch), len(self.verbalisers)))
        for rows in sorted_batches([len(ids) for ids in encoded], self.batch_size):
            rests = [encoded[i][shared:] for i in rows]
            width = max(len(ids) for ids in rests)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rests])
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rests])
            positions = shared + (mask.cumsum(1) - 1).clamp_min(0)  # left padding: positions run on from the prefix
            cache = None
            if prefix is not None:
                cache = copy.deepcopy(prefix)
                cache.batch_repeat_interleave(len(rows))
                mask = torch.cat([torch.ones(len(rows), shared, dtype=mask.dtype), mask], 1)
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1,
                           use_cache=cache is not None, **{self.cache_argument: cache}).logits[:, -1].float()
            scores = logits.log_softmax(-1)[:, self.token_ids].logsumexp(-1)  # [B, K]: either form of the word
            out[rows] = scores.softmax(-1).numpy()
        return out


def shared_prefix_length(encoded: list[list[int]]) -> int:
    """How many leading tokens every sequence shares, leaving each at least one token of its own."""
    shortest = min(len(ids) for ids in encoded)
    length = 0
    while length < shortest - 1 and all(ids[length] == encoded[0][length] for ids in encoded):
        length += 1
    return length


class OpenAIScorer(JsonEndpoint):
    """Inputs -> [N, K] label probabilities from an OpenAI-compatible server (`url` is its base, e.g.
    http://localhost:8080/v1): `/chat/completions` with the prompt as the user's turn, one input a request, or
    `/completions` with a batch of prompts a request. The probability of a label is the mass of the answer's
    possible first tokens (the top 20 log-probabilities) that begin its verbaliser; a server that returns no
    log-probabilities is asked for `samples` sampled answers instead, counted (each label also gets half a count,
    so none is certain from a few samples)."""

    def __init__(self, url: str, model: str, verbalisers: list[str], prompt: str | None = None, pairs: bool = False,
                 chat: bool = True, samples: int = 10, timeout: float = 30.0, token_env: str | None = None):
        super().__init__(url.rstrip("/") + ("/chat/completions" if chat else "/completions"), timeout, token_env)
        self.model, self.verbalisers, self.chat, self.samples = model, verbalisers, chat, samples
        self.prompt = checked_prompt(prompt, pairs)
        self.words = [word.strip().lower() for word in verbalisers]
        self.sampled = 0  # inputs scored from samples, the server having returned no log-probabilities

    def __call__(self, batch: Sequence[TextInput]) -> np.ndarray:
        prompts = [filled(self.prompt, x, self.verbalisers) for x in batch]
        if not self.chat:
            return self.completions(prompts)
        return np.stack([self.chat_completion(prompt) for prompt in prompts])

    def chat_completion(self, prompt: str) -> np.ndarray:
        messages = [{"role": "user", "content": prompt}]
        answer = self.post({"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0,
                            "logprobs": True, "top_logprobs": 20})
        content = ((answer.get("choices") or [{}])[0].get("logprobs") or {}).get("content")
        if content:
            return self.from_logprobs({t["token"]: t["logprob"] for t in content[0].get("top_logprobs", [])})
        self.sampled += 1
        answer = self.post({"model": self.model, "messages": messages, "max_tokens": 4, "temperature": 1.0,
                            "n": self.samples})
        return self.from_samples([choice["message"]["content"] for choice in answer["choices"]])

    def completions(self, prompts: list[str]) -> np.ndarray:
        answer = self.post({"model": self.model, "prompt": prompts, "max_tokens": 1, "temperature": 0,
                            "logprobs": 20})
        choices = sorted(answer["choices"], key=lambda choice: choice.get("index", 0))
        rows = []
        for prompt, choice in zip(prompts, choices):
            top = (choice.get("logprobs") or {}).get("top_logprobs")
            if top:
                rows.append(self.from_logprobs(top[0]))
                continue
            self.sampled += 1
            sampled = self.post({"model": self.model, "prompt": prompt, "max_tokens": 4, "temperature": 1.0,
                                 "n": self.samples})
            rows.append(self.from_samples([c["text"] for c in sampled["choices"]]))
        return np.stack(rows)

    def from_logprobs(self, top: dict[str, float]) -> np.ndarray:
        """[K] probabilities from the answer's top first tokens: a token counts for each verbaliser it begins."""
        mass = np.zeros(len(self.words))
        for token, logprob in top.items():
            token = token.strip().lower()
            for k, word in enumerate(self.words):
                if token and word.startswith(token):
                    mass[k] += np.exp(logprob)
        if not mass.any():  # no verbaliser among the likely answers: the input tells nothing
            return np.full(len(self.words), 1.0 / len(self.words))
        return mass / mass.sum()

    def from_samples(self, answers: list[str]) -> np.ndarray:
        """[K] probabilities from sampled answers: counts of those that begin with each verbaliser, plus a half."""
        counts = np.full(len(self.words), 0.5)
        for answer in answers:
            text = answer.strip().lower()
            for k, word in enumerate(self.words):
                if text.startswith(word):
                    counts[k] += 1
                    break
        return counts / counts.sum()
