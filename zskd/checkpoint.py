"""Resumable training state in a work directory: `checkpoint-<step>/` holds the weights (safetensors), the
optimizer and RNG state, and `latest.json` points at the newest complete one (written last, atomically)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from zskd.config import write_json

log = logging.getLogger(__name__)


def save_checkpoint(work: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    extra: dict | None = None, extra_state: dict | None = None) -> None:
    """Write checkpoint `step` completely, then point `latest.json` at it, then drop older ones. `extra` (JSON)
    goes to latest.json; `extra_state` (tensors, e.g. a second model's state_dict) beside the optimizer."""
    target = work / f"checkpoint-{step}"
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, target / "model.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "extra_state": extra_state or {}},
               target / "trainer_state.pt")
    write_json(work / "latest.json", {"step": step, "dir": target.name, **(extra or {})})
    for old in work.glob("checkpoint-*"):
        if old != target:
            shutil.rmtree(old)


def load_checkpoint(work: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the latest checkpoint in `work` into `model` and `optimizer`; return what `latest.json` holds
    ({"step": 0} when there is no checkpoint) plus the saved `extra_state`. Loads tensors only (safetensors,
    weights_only)."""
    pointer = work / "latest.json"
    if not pointer.is_file():
        return {"step": 0, "extra_state": {}}
    latest = json.loads(pointer.read_text())
    source = work / latest["dir"]
    model.load_state_dict(load_file(source / "model.safetensors"))
    state = torch.load(source / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    log.info("resuming from %s at step %d", source, latest["step"])
    return {**latest, "extra_state": state.get("extra_state", {})}
