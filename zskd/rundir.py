"""Where every long command (`distill`, `teacher-train`, `generate`) makes its output: in `<out>.partial/`, which
an interrupted run resumes from, and then at `<out>` in one rename, so that nobody mistakes half an output for a
whole one and no finished output is overwritten."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Collection

from zskd.config import write_json
from zskd.data import DataError


class RunDirectory:
    """The output `out` of one run and its work directory `<out>.partial`. Refuses an `out` that exists."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.work = Path(f"{out}.partial")
        if self.out.exists():
            raise FileExistsError(f"{self.out} already exists: remove it or choose another --out")

    def begin(self, settings: dict[str, Any], restart: bool = False, derived: Collection[str] = ()) -> Path:
        """Create the work directory, or check that the one there was started with the same `settings` (resuming
        with other options would splice two runs into one), and keep them in `config.json`; with `restart`, an
        interrupted run's work directory is deleted first. Returns the work directory. `derived` names settings the
        run worked out from the others: a refusal names them only when no option the user gives changed."""
        settings = json.loads(json.dumps({k: v for k, v in settings.items() if k != "restart"}, default=str))
        if restart and self.work.exists():
            shutil.rmtree(self.work)
        saved = self.work / "config.json"
        if saved.is_file():
            before = json.loads(saved.read_text())
            changed = sorted(k for k in before.keys() | settings.keys() if before.get(k) != settings.get(k))
            if changed and [p.name for p in self.work.iterdir()] == ["config.json"]:  # nothing done yet to lose
                shutil.rmtree(self.work)
            elif changed:
                named = [k for k in changed if k not in derived] or changed
                raise DataError(f"{self.work} was started with other options ({', '.join(named)}): run the same "
                                "command to resume it, or add --restart to start again")
        self.work.mkdir(parents=True, exist_ok=True)
        write_json(saved, settings)
        return self.work

    def finish(self, made: Path) -> None:
        """Move the complete output `made` (inside the work directory) to `out`; then drop the work directory."""
        made.rename(self.out)
        shutil.rmtree(self.work)
