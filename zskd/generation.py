"""Text from a small causal language model, fast on CPU: what the `generate` method's transfer sets are made of.

    lm = LanguageModel.load("smollm2-135m")                        # the packaged SmolLM2-135M-Instruct (GGUF)
    texts = lm.sample(["Write a short movie review that is positive."] * 64, SamplingConfig(), seed=0)

Prompts are sorted by token length and sampled in batches (left padding, the KV cache, one `generate` call per
batch), so a batch pads little and the model runs one matrix product per step for the whole batch instead of one
per prompt. A sequence ends at end-of-text or a newline; its batch ends when all have. Each batch has its own
seed, so a resumed run reproduces what an uninterrupted one would have written.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from zskd.batching import sorted_batches
from zskd.resources import SMOLLM2, loading, smollm2_gguf_file

log = logging.getLogger(__name__)


@dataclass
class SamplingConfig:
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 50
    batch_size: int = 32


class LanguageModel:
    """A causal LM and its tokenizer, set up for batched sampling (pad = end-of-text, left padding)."""

    def __init__(self, model, tokenizer, chat: bool, bf16: bool | None = None):
        from zskd.teacher import bf16_supported

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.bf16 = bf16_supported() if bf16 is None else bf16  # sample with bfloat16 weights
        self._bf16_copy = None  # see `sampling_model`
        self.chat = chat  # the tokenizer has a chat template: prompts are sent as a user message
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        newline = tokenizer.encode("\n", add_special_tokens=False)
        self.stop_ids = sorted({tokenizer.eos_token_id, *newline[-1:]} - {None})

    @classmethod
    def load(cls, name_or_path: str = SMOLLM2.name, trust_remote_code: bool = False,
             bf16: bool | None = None) -> "LanguageModel":
        """The packaged SmolLM2 (`smollm2-135m`), a local directory (safetensors or one .gguf file) or a hub id."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options: dict = {"trust_remote_code": trust_remote_code}
        if name_or_path == SMOLLM2.name:
            gguf = smollm2_gguf_file()
            path, options["gguf_file"] = str(gguf.parent), gguf.name
        else:
            path = name_or_path
            ggufs = sorted(Path(path).glob("*.gguf")) if Path(path).is_dir() else []
            if ggufs and not (Path(path) / "config.json").is_file():
                options["gguf_file"] = ggufs[0].name
            else:
                options["use_safetensors"] = True  # a directory or a hub id: never pickled weights
        with loading("a language model", name_or_path):
            tokenizer = AutoTokenizer.from_pretrained(path, **options)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
        if "gguf_file" in options:
            # GGUF weights are de-quantized to float32 on load, yet transformers keeps the model marked quantized and
            # refuses to save it, which the low-data path does after fine-tuning: the model is a plain one now.
            model.hf_quantizer = None
            model.config.__dict__.pop("quantization_config", None)
        return cls(model, tokenizer, chat=bool(getattr(tokenizer, "chat_template", None)), bf16=bf16)

    def sampling_model(self):
        """The model that samples: with `bf16`, a bfloat16 copy of the weights, made once and dropped when
        `finetune` changes them (autocast would cast every weight again at every step: ~1.5-2x slower here)."""
        if not self.bf16:
            return self.model
        if self._bf16_copy is None:
            self._bf16_copy = copy.deepcopy(self.model).to(torch.bfloat16).eval()
        return self._bf16_copy

    def format_prompt(self, prompt: str) -> str:
        """The text the model continues: a chat turn for instruct models, the prompt itself otherwise."""
        if not self.chat:
            return prompt
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    def sample(self, prompts: Sequence[str], config: SamplingConfig, seed: int, progress: bool = False,
               raw: bool = False) -> list[str]:
        """One sampled continuation per prompt, in the order of `prompts` (up to the first newline, stripped).
        `raw` sends the prompts as they are, without the chat template."""
        return [text for text, _ in self.sample_with_counts(prompts, config, seed, progress, raw)]

    @torch.inference_mode()
    def sample_with_counts(self, prompts: Sequence[str], config: SamplingConfig, seed: int, progress: bool = False,
                           raw: bool = False) -> list[tuple[str, int]]:
        """`sample`, with the number of new tokens each continuation took (its stop token included)."""
        texts = [p if raw else self.format_prompt(p) for p in prompts]
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        out: list[tuple[str, int]] = [("", 0)] * len(texts)
        batches = sorted_batches([len(ids) for ids in encoded], config.batch_size)
        model = self.sampling_model()
        for number, batch in enumerate(tqdm(batches, desc="sampling", unit="batch", disable=not progress)):
            torch.manual_seed(hash_seed(seed, number))
            width = max(len(encoded[i]) for i in batch)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
            attention_mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
            generated = model.generate(
                input_ids=input_ids, attention_mask=attention_mask, do_sample=True, temperature=config.temperature,
                top_p=config.top_p, top_k=config.top_k, max_new_tokens=config.max_new_tokens, use_cache=True,
                pad_token_id=pad, eos_token_id=self.stop_ids,
            )
            for row, i in enumerate(batch):
                new = generated[row, width:].tolist()
                stop = next((n for n, t in enumerate(new) if t in self.stop_ids), len(new) - 1)
                out[i] = (self.tokenizer.decode(new[:stop], skip_special_tokens=True).strip(), stop + 1)
        return out


    def _response_batch(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """Right-padded (prompt + response + end-of-text) ids with labels on the response tokens only."""
        rows, targets = [], []
        for prompt, response in zip(prompts, responses):
            head = self.tokenizer(self.format_prompt(prompt), add_special_tokens=False)["input_ids"]
            tail = (self.tokenizer(response.strip(), add_special_tokens=False)["input_ids"]
                    + [self.tokenizer.eos_token_id])
            rows.append(head + tail)
            targets.append([-100] * len(head) + tail)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        return {"input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
                "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
                "labels": torch.tensor([t + [-100] * (width - len(t)) for t in targets])}

    @torch.no_grad()
    def response_loss(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 8) -> float:
        """Mean cross-entropy per response token: how likely the model finds `responses` after `prompts`."""
        self.model.eval()
        total, count = 0.0, 0
        for start in range(0, len(prompts), batch_size):
            batch = self._response_batch(prompts[start : start + batch_size], responses[start : start + batch_size])
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += self.model(**batch).loss.item() * tokens
            count += tokens
        return total / max(count, 1)

    def finetune(self, prompts: Sequence[str], responses: Sequence[str], epochs: int = 3, lr: float = 5e-5,
                 batch_size: int = 8, seed: int = 0,
                 heldout: tuple[Sequence[str], Sequence[str]] | None = None) -> dict[str, list[float]]:
        """Full fine-tuning on (prompt, response) pairs, the loss on response tokens only (the low-data setting:
        the LM learns to write like the few labelled examples when asked for their label).

        With `heldout` (prompts, responses kept out of training), training stops after the first epoch that does
        not lower the loss on them and keeps the weights of the best epoch (or the untrained ones): past it the LM
        starts to recite its examples rather than write like them. Returns the mean training loss of each epoch run
        ("train") and the held-out loss before training and after each epoch ("heldout", empty without `heldout`)."""
        generator = torch.Generator().manual_seed(seed)
        self._bf16_copy = None
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.0)
        history: dict[str, list[float]] = {"train": [], "heldout": []}
        best_state = None
        if heldout is not None:
            history["heldout"].append(self.response_loss(*heldout, batch_size=batch_size))
            best_state = self._weights_copy()
        for _ in tqdm(range(epochs), desc="fine-tuning the generator", unit="epoch"):
            self.model.train()
            order = torch.randperm(len(prompts), generator=generator).tolist()
            losses = []
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                loss = self.model(**self._response_batch([prompts[i] for i in chosen],
                                                         [responses[i] for i in chosen])).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
            history["train"].append(sum(losses) / len(losses))
            if heldout is None:
                continue
            history["heldout"].append(self.response_loss(*heldout, batch_size=batch_size))
            if history["heldout"][-1] >= min(history["heldout"][:-1]):
                self.model.load_state_dict(best_state)
                break
            best_state = self._weights_copy()
        self.model.eval()
        return history

    def _weights_copy(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}

    def save(self, directory: str | Path) -> None:
        """A transformers directory (safetensors) that `LanguageModel.load` reads back."""
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)


def hash_seed(seed: int, number: int) -> int:
    """A per-batch seed that depends only on (seed, batch number)."""
    return (seed * 1_000_003 + number * 7919) % (2**31)


_WORD = re.compile(r"[A-Za-z]+")


def is_degenerate(text: str, min_words: int = 3) -> bool:
    """Empty, too short, mostly not words, or looping (one word or trigram filling a large share of the text)."""
    words = text.lower().split()
    if len(words) < min_words:
        return True
    if sum(bool(_WORD.search(w)) for w in words) < 0.6 * len(words):
        return True
    most_common = max(words.count(w) for w in set(words))
    if len(words) >= 6 and most_common > 0.4 * len(words):
        return True
    trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(trigrams) >= 6 and len(set(trigrams)) < 0.6 * len(trigrams)


def normalise(text: str) -> str:
    """The key two samples share when they differ only in case, spacing, surrounding quotes or final punctuation."""
    return " ".join(text.lower().strip().strip("\"'").rstrip(".!?").split())


def clean_samples(texts: Sequence[str], min_words: int = 3) -> tuple[list[int], dict[str, int]]:
    """Indices of the texts to keep (first of each duplicate, no degenerate ones) and what was dropped."""
    seen: set[str] = set()
    kept, dropped = [], {"degenerate": 0, "duplicate": 0}
    for i, text in enumerate(texts):
        text = text.strip().strip("\"'").strip()
        if is_degenerate(text, min_words):
            dropped["degenerate"] += 1
            continue
        key = normalise(text)
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(i)
    return kept, dropped
