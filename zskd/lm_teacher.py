"""A causal language model as a zero-shot teacher: no training, no data, only a prompt and one word per label.

    zskd distill --teacher-lm smollm2-135m --teacher-labels negative,positive --eval-task sst2 --out runs/sst2-lm
    zskd distill --teacher-lm my-llm-dir --teacher-labels yes,no --teacher-verbalisers Yes,No \
        --teacher-prompt 'Premise: {text}\nHypothesis: {text_pair}\nDoes the premise entail the hypothesis?' ...

Each input fills `prompt` ({text}, and {text_pair} for sentence pairs; {labels} lists the verbalisers), sent as a
chat turn where the LM has a chat template; the class probabilities are the LM's next-token probabilities of each
label's verbaliser (its first token, with or without a leading space), renormalised over the labels: the scoring
of pattern-verbaliser pairs (Schick and Schütze, 2021). The LM runs in this process; distillation sees it as it
sees an endpoint (`BlackBoxTeacher`): answers only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from zskd.batching import sorted_batches
from zskd.data import DataError, TextInput

DEFAULT_PROMPT = "Text: {text}\nWhich word describes the text best: {labels}? Answer with one word."
DEFAULT_PAIR_PROMPT = ("First text: {text}\nSecond text: {text_pair}\nWhich word describes how the second text "
                       "relates to the first: {labels}? Answer with one word.")


class LanguageModelScorer:
    """Inputs -> [N, K] label probabilities from a `zskd.generation.LanguageModel`'s next token after the prompt."""

    def __init__(self, lm, verbalisers: list[str], prompt: str | None = None, pairs: bool = False,
                 batch_size: int = 16):
        self.lm, self.verbalisers, self.batch_size = lm, verbalisers, batch_size
        self.prompt = prompt or (DEFAULT_PAIR_PROMPT if pairs else DEFAULT_PROMPT)
        if "{text}" not in self.prompt or (pairs and "{text_pair}" not in self.prompt):
            raise DataError(f"--teacher-prompt must contain {{text}}{' and {text_pair}' if pairs else ''}")
        tokenizer = lm.tokenizer
        # [K, 2]: the first token of each verbaliser, bare and after a space
        self.token_ids = torch.tensor([[tokenizer.encode(form, add_special_tokens=False)[0]
                                        for form in (word, " " + word)] for word in verbalisers])
        firsts = self.token_ids[:, 0].tolist()
        if len(set(firsts)) < len(firsts):
            raise DataError(f"verbalisers {', '.join(verbalisers)} begin with the same token for this LM: give "
                            "--teacher-verbalisers that start differently")

    def prompts(self, batch: Sequence[TextInput]) -> list[str]:
        labels = ", ".join(self.verbalisers)
        return [self.lm.format_prompt(self.prompt.format(text=x[0], text_pair=x[1], labels=labels)
                                      if isinstance(x, (tuple, list)) else self.prompt.format(text=x, labels=labels))
                for x in batch]

    @torch.inference_mode()
    def __call__(self, batch: Sequence[TextInput]) -> np.ndarray:
        tokenizer, model = self.lm.tokenizer, self.lm.model
        encoded = tokenizer(self.prompts(batch), add_special_tokens=False)["input_ids"]
        out = np.zeros((len(batch), len(self.verbalisers)))
        for rows in sorted_batches([len(ids) for ids in encoded], self.batch_size):
            width = max(len(encoded[i]) for i in rows)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in rows])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in rows])
            positions = (mask.cumsum(1) - 1).clamp_min(0)  # left padding: each prompt's positions start at 0
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1].float()
            scores = logits.log_softmax(-1)[:, self.token_ids].logsumexp(-1)  # [B, K]: either form of the word
            out[rows] = scores.softmax(-1).numpy()
        return out
