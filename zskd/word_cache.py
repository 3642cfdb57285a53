"""One sentence tokenised word by word from a cache of each word's tokens: the batch-1 latency path.

A fast tokenizer's call (normalising, pre-tokenising, building an `Encoding` in Rust and handing it to Python) costs
~50 µs for one SST-2 sentence here, more than a small student's whole ONNX graph. A WordPiece tokenizer (BERT,
DistilBERT, ELECTRA, MiniLM) normalises character by character and splits at spaces before anything else, so a
sentence of printable ASCII gets the ids of its space-separated words, each tokenised alone, between the special
tokens. `WordCache` serves those ids from a dictionary, checks the identity on probe texts when it is made, and
answers None (the caller then runs the tokenizer) for other tokenizers, other text, and sentences to truncate.
"""

from __future__ import annotations

import weakref

PROBES = ("", "a", "Hello, world! It's 3.14 -- isn't it?", "(yes) [CLS] e-mail: x@y.z ... #1 & $20; 'quoted' \"twice\"",
          "  two  spaces   and a trailing one ", "UPPER lower MiXeD unbelievably " + "x" * 120,
          "a`b~c^d|e{f}g<h>i=j_k+l*m%n\\o/p")
MAX_WORDS = 200_000  # the cache starts again beyond this many distinct words

_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def word_cache(tokenizer) -> "WordCache":
    """The cache of `tokenizer` (a transformers fast tokenizer), made on first use."""
    cache = _caches.get(tokenizer)
    if cache is None:
        cache = _caches[tokenizer] = WordCache(tokenizer.backend_tokenizer)
    return cache


class WordCache:
    """`ids(text, max_length)`: the tokenizer's ids of one sentence, from cached words where that is exact."""

    def __init__(self, backend):
        from tokenizers.models import WordPiece

        self.backend = backend
        self.words: dict[str, list[int]] = {}
        full, bare = backend.encode("a").ids, backend.encode("a", add_special_tokens=False).ids
        start = next((i for i in range(len(full)) if full[i:i + len(bare)] == bare), None)
        self.enabled = isinstance(backend.model, WordPiece) and start is not None
        if self.enabled:
            self.prefix, self.suffix = full[:start], full[start + len(bare):]
            truncation = backend.truncation
            backend.no_truncation()
            try:
                expected = {text: backend.encode(text) for text in PROBES}
                self.enabled = all(self._ids(text) == e.ids and not any(e.type_ids) for text, e in expected.items())
            finally:
                if truncation:
                    backend.enable_truncation(**truncation)

    def ids(self, text: str, max_length: int) -> list[int] | None:
        """The ids the tokenizer gives `text` (special tokens included), or None where the cache cannot say."""
        if not self.enabled or not text.isascii() or not text.isprintable():
            return None
        ids = self._ids(text)
        return ids if ids is not None and len(ids) <= max_length else None

    def _ids(self, text: str) -> list[int] | None:
        ids = list(self.prefix)
        words = self.words
        for word in text.split(" "):
            if word:
                cached = words.get(word)
                if cached is None:
                    encoding = self.backend.encode(word, add_special_tokens=False)
                    if encoding.overflowing:  # cut by the tokenizer's truncation: too long to serve from here
                        return None
                    if len(words) >= MAX_WORDS:
                        words.clear()
                    cached = words[word] = encoding.ids
                ids += cached
        ids += self.suffix
        return ids
