"""Fault drills for a Ray job: kill a training worker mid-run to see what the job does (it fails with a clear
message, or Ray Train restarts it with ``RayConfig.retries``; nothing is published until it succeeds)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KillWorker:
    """An ``on_step`` hook: SIGKILL the worker of ``rank`` after optimiser step ``step``. With ``once``, a file
    path: only the first time (the file is written just before), so a retried run goes through."""

    rank: int = 1
    step: int = 3
    once: str | None = None

    def __call__(self, rank: int, step: int) -> None:
        if rank != self.rank or step != self.step:
            return
        if self.once is not None:
            if os.path.exists(self.once):
                return
            Path(self.once).write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
