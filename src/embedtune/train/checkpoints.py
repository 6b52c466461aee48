"""Checkpoints that survive a kill: a marker file is written only after a checkpoint's last
file, and a resume ignores (and removes) any checkpoint without it."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from embedtune.io import is_main_process, write_text

logger = logging.getLogger(__name__)

COMPLETE = "embedtune-complete"  # written into a checkpoint after every file of it is saved


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose save finished; half-written ones are set aside."""
    if not folder.is_dir():
        return None
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir()),
        key=lambda p: int(p.name.split("-")[1]),
    )
    complete = [p for p in found if (p / COMPLETE).is_file()]
    for partial in (p for p in found if not (p / COMPLETE).is_file()):
        if is_main_process():
            logger.warning("checkpoint %s was not completely written; ignoring it", partial.name)
            shutil.rmtree(partial, ignore_errors=True)
    return complete[-1] if complete else None


def checkpoint_callbacks() -> list[Any]:
    """The trainer callbacks: the completion marker (and a test-only step delay)."""
    import time

    from transformers import TrainerCallback

    class CheckpointComplete(TrainerCallback):
        """Marks a checkpoint complete once the trainer has written all of it."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if os.environ.get("EMBEDTUNE_TEST_KILL_BEFORE_MARK") == str(state.global_step):
                    os.kill(os.getpid(), 9)  # tests: die after the files, before the marker
                write_text(folder / COMPLETE, f"{state.global_step}\n")

    class StepDelay(TrainerCallback):
        """Tests only: slow each step so a test can kill the process mid-run."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            time.sleep(float(os.environ.get("EMBEDTUNE_TEST_STEP_DELAY", "0")))

    return [
        CheckpointComplete(),
        *([StepDelay()] if "EMBEDTUNE_TEST_STEP_DELAY" in os.environ else []),
    ]
