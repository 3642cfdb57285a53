"""The teacher: a transformers sequence-classification model that labels text for the student.

`Teacher.logits` is the labelling hot path: inputs are tokenized once, sorted by length, padded per batch and run
under `inference_mode`. The white-box methods use `embedding_matrix` and `logits_from_embeddings`, which keep
gradients with respect to the input embeddings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from zskd.batching import pad, sorted_batches
from zskd.data import DataError, TextInput, tokenize
from zskd.resources import PACKAGED_MODELS, loading
from zskd.students.base import finite_logits


def resolve_model_path(name_or_path: str) -> str:
    """A packaged model's name (e.g. "minilm-l6") becomes its directory; anything else (a path or hub id) is kept.
    A path that cannot be a hub id ("org/name") and is not there is an error here, not a hub lookup."""
    for packaged in PACKAGED_MODELS:
        if name_or_path == packaged.name:
            return str(packaged.path())
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    path = Path(name_or_path).expanduser()
    if looks_like_path and not path.exists():
        raise DataError(f"no model at {name_or_path}: give an existing model directory or a hub id such as org/name")
    if path.is_dir() and not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise DataError(f"{name_or_path} has no config.json: give the directory a model was saved to")
    return name_or_path


def bf16_supported() -> bool:
    """Whether the CPU has native bfloat16 instructions (AVX512-BF16 or AMX): needed, not enough, for bf16 to pay."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bf16_pays(cpuinfo: str | None = None) -> bool:
    """Whether bfloat16 autocast labels faster than float32 on this CPU: where it has AMX tiles (made for it; not
    measured here), or is an AMD with AVX512-BF16 (an AMD EPYC labelled 2.0-2.4x faster); not on an Intel with
    AVX512-BF16 and no AMX (1.65x slower, BENCHMARKS.md). Read from /proc/cpuinfo (`cpuinfo`: its text); False where
    that is not there."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")),
                     []))
    return "amx_bf16" in flags or ("avx512_bf16" in flags and "AuthenticAMD" in cpuinfo)


def usable_positions(config, tokenizer) -> int:
    """How many tokens the model can read: its position table, less RoBERTa's offset (its positions start after
    the padding index), and no more than the tokenizer's `model_max_length` where that is set."""
    positions = getattr(config, "max_position_embeddings", None) or 10**9
    if config.model_type in ("roberta", "xlm-roberta", "camembert") and config.pad_token_id is not None:
        positions -= config.pad_token_id + 1
    limit = getattr(tokenizer, "model_max_length", None)
    return min(positions, limit) if limit and limit < 10**6 else positions


class Teacher:
    """A classifier to distil from: batched float32 logits for texts or sentence pairs, and embedding access.
    With `bf16` (default: on a GPU that supports it, or on a CPU where it is known to pay) labelling runs
    under bfloat16 autocast; pass bf16=False for exact float32 computation. `device` moves the model first."""

    label_chunk_size = 4096  # inputs labelled between writes to the label cache
    white_box = True  # methods may read its embeddings and gradients, not only its answers

    def __init__(self, model, tokenizer, max_length: int = 128, batch_size: int = 64, max_tokens: int = 8192,
                 bf16: bool | None = None, device: str | torch.device | None = None):
        self.model = (model.to(device) if device is not None else model).eval()
        self.tokenizer = tokenizer
        self.max_length = min(max_length, usable_positions(model.config, tokenizer))
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.runtime = "torch"
        self.session = None  # an ONNX Runtime session, after `use_onnx_runtime`
        self.bf16 = self._bf16_pays() if bf16 is None else bf16
        self.inputs_labelled = 0  # how many inputs `logits` has run on: what the label cache saves

    def _bf16_pays(self) -> bool:
        """Whether to label under bfloat16 autocast: on CUDA where the GPU supports it; on a CPU whose bf16 is known
        to pay (`cpu_bf16_pays`); elsewhere not. Decided from the hardware, never by timing, so that a run labels
        in the same precision every time (labels, the label cache and so the student depend on it)."""
        if self.device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return self.device.type == "cpu" and bf16_supported() and cpu_bf16_pays()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, trust_remote_code: bool = False, **kwargs) -> "Teacher":
        """Load a transformers directory or hub id (safetensors weights only)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_model_path(str(name_or_path))
        with loading("a classifier", name_or_path):
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(
                path, use_safetensors=True, trust_remote_code=trust_remote_code
            )
        return cls(model.float(), tokenizer, **kwargs)

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [str(id2label[i]) for i in range(self.num_labels)]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def fingerprint(self) -> str:
        """A hash of the weights, `max_length`, precision and runtime: what decides the logits, so it keys the label
        cache."""
        if getattr(self, "_fingerprint", None) is None:
            runtime = "" if self.runtime == "torch" else f",runtime={self.runtime}"  # torch: as before runtimes
            digest = hashlib.sha256(f"max_length={self.max_length},bf16={self.bf16}{runtime}".encode())
            for name, tensor in sorted(self.model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, inputs: Sequence[TextInput]) -> dict[str, list[list[int]]]:
        """Token ids (and segment ids) for every input, truncated to `max_length`, not padded."""
        return tokenize(self.tokenizer, inputs, self.max_length)

    @torch.inference_mode()
    def logits(self, inputs: Sequence[TextInput], progress: bool = False) -> np.ndarray:
        """[N, K] float32 logits, in the order of `inputs`."""
        self.inputs_labelled += len(inputs)
        encoded = self.encode(inputs)
        ids = encoded["input_ids"]
        segments = encoded.get("token_type_ids")
        out = np.zeros((len(ids), self.num_labels), dtype=np.float32)
        batches = sorted_batches([len(x) for x in ids], self.batch_size, self.max_tokens)
        for batch in tqdm(batches, desc="teacher labelling", unit="batch", disable=not progress):
            out[batch] = self._forward([ids[i] for i in batch], [segments[i] for i in batch] if segments else None)
        return finite_logits(out, "the teacher")

    def with_runtime(self, runtime: str, cache_dir: str | Path) -> "Teacher":
        """This teacher labelling with `runtime` (one of TEACHER_RUNTIMES): PyTorch as loaded, or ONNX Runtime with
        the graph exported into `<cache_dir>/onnx`."""
        if runtime != "torch":
            self.use_onnx_runtime(Path(cache_dir) / "onnx", int8=runtime == "onnx-int8")
        return self

    def use_onnx_runtime(self, directory: str | Path, int8: bool = False) -> "Teacher":
        """Label with ONNX Runtime from now on (`int8`: its dynamic int8 quantisation): the graph is exported once
        into `directory/<weights hash>/` and reused. The white-box methods still use the PyTorch model."""
        import onnxruntime

        directory = Path(directory) / self.fingerprint()[:20]
        graph = export_onnx_classifier(self, directory / "model.onnx")
        if int8:
            from zskd.export import quantised_int8

            graph = quantised_int8(graph, directory / "model-int8.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.runtime, self.bf16, self._fingerprint = ("onnx-int8" if int8 else "onnx"), False, None
        return self

    def _forward(self, ids: list[list[int]], segments: list[list[int]] | None) -> np.ndarray:
        if self.session is not None:
            feeds = {"input_ids": pad(ids, self.tokenizer.pad_token_id or 0).numpy(),
                     "attention_mask": pad([[1] * len(x) for x in ids], 0).numpy()}
            if any(i.name == "token_type_ids" for i in self.session.get_inputs()):
                feeds["token_type_ids"] = pad(segments, 0).numpy() if segments else np.zeros_like(feeds["input_ids"])
            return self.session.run(None, feeds)[0].astype(np.float32)
        return self.model_output(ids, segments).logits.float().cpu().numpy()

    def model_output(self, ids: list[list[int]], segments: list[list[int]] | None):
        """The PyTorch model's output on a batch of token-id rows, padded here (under bfloat16 autocast where it
        pays): what labelling reads the logits of, and `--feature-weight` what the logit layer was given."""
        input_ids = pad(ids, self.tokenizer.pad_token_id or 0).to(self.device)
        attention_mask = pad([[1] * len(x) for x in ids], 0).to(self.device)
        extra = {"token_type_ids": pad(segments, 0).to(self.device)} if segments else {}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)

    @property
    def embedding_matrix(self) -> torch.Tensor:
        """The [V, D] input word-embedding matrix."""
        return self.model.get_input_embeddings().weight

    def logits_from_embeddings(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, K] logits from [B, L, D] word embeddings, differentiable with respect to them."""
        takes_segments = "token_type_ids" in self.tokenizer.model_input_names  # not RoBERTa's or DistilBERT's
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None and takes_segments else {}
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra).logits


TEACHER_RUNTIMES = ("torch", "onnx", "onnx-int8")


def check_runtime(runtime: str) -> None:
    """`--teacher-runtime` is one of TEACHER_RUNTIMES, or a one-line error says which are."""
    if runtime not in TEACHER_RUNTIMES:
        raise DataError(f"unknown --teacher-runtime {runtime!r}: choose {', '.join(TEACHER_RUNTIMES)}")


class ClassifierLogits(torch.nn.Module):
    """A transformers classifier as a function of tensors to logits, for the ONNX exporter."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_onnx_classifier(teacher: Teacher, path: Path) -> Path:
    """`teacher`'s model as an ONNX graph at `path` (batch and length free), unless one is there; written under a
    temporary name and renamed, and checked against PyTorch (largest logit difference 1e-3)."""
    from zskd.export import save_onnx

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = ["an example to trace the model with", "and a shorter one"]
    encoded = teacher.tokenizer(texts, padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in encoded else [])
    batch = torch.export.Dim("batch", min=1, max=4096)
    length = torch.export.Dim("length", min=2, max=max(3, teacher.max_length))
    partial = path.with_name(path.name + ".partial")
    save_onnx(ClassifierLogits(teacher.model).eval(), {n: encoded[n] for n in names}, partial,
              tuple({0: batch, 1: length} for _ in names))
    import onnxruntime

    session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    check = teacher.tokenizer(texts + ["a third, longer example, to run at a length the trace did not see"],
                              padding=True, return_tensors="np")
    got = session.run(None, {n: check[n].astype(np.int64) for n in names})[0]
    with torch.inference_mode():
        want = ClassifierLogits(teacher.model)(*(torch.from_numpy(check[n]).long() for n in names)).float().numpy()
    if np.abs(got - want).max() > 1e-3:
        partial.unlink()
        raise RuntimeError(f"the teacher's ONNX graph differs from PyTorch by {np.abs(got - want).max():.2g}: "
                           "label with --teacher-runtime torch")
    partial.replace(path)
    return path
