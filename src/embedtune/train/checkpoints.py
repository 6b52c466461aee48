"""Checkpoints that survive a kill: a marker file is written only after a checkpoint's last
file, and a resume ignores (and removes) any checkpoint without it. The marker also records
the training's seconds so far, so that a resumed training reports the time it took in all."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from embedtune.io import is_main_process, write_json

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


class TrainingClock:
    """A training's seconds across resumes: this process's since it began, plus those the
    checkpoint it resumed from had recorded (the work kept; what a killed process did after
    its last checkpoint is lost, done again, and counted once)."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.earlier = 0.0

    def seconds(self) -> float:
        return self.earlier + time.perf_counter() - self.began

    def resumed(self, checkpoint: Path, recorded: float | None) -> None:
        """Count the seconds recorded with ``checkpoint`` (None: not recorded there)."""
        if recorded is None:
            logger.warning(
                "%s does not record its training time (an older embedtune wrote it): the "
                "time before it is left out of the training's seconds",
                checkpoint.name,
            )
        else:
            self.earlier = recorded


def recorded_seconds(record: Path) -> float | None:
    """The training seconds a checkpoint's marker (or a phase's record) holds, if any."""
    try:
        return float(json.loads(record.read_text(encoding="utf-8"))["seconds"])
    except (OSError, ValueError, KeyError, TypeError):  # none, or a bare step number
        return None


def checkpoint_callbacks(clock: TrainingClock) -> list[Any]:
    """The trainer callbacks: the completion marker, with the training's seconds so far
    (and a test-only step delay)."""
    from transformers import TrainerCallback

    class CheckpointComplete(TrainerCallback):
        """Marks a checkpoint complete once the trainer has written all of it."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if os.environ.get("EMBEDTUNE_TEST_KILL_BEFORE_MARK") == str(state.global_step):
                    os.kill(os.getpid(), 9)  # tests: die after the files, before the marker
                write_json(
                    folder / COMPLETE, {"step": state.global_step, "seconds": clock.seconds()}
                )

    class StepDelay(TrainerCallback):
        """Tests only: slow each step so a test can kill the process mid-run."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            time.sleep(float(os.environ.get("EMBEDTUNE_TEST_STEP_DELAY", "0")))

    return [
        CheckpointComplete(),
        *([StepDelay()] if "EMBEDTUNE_TEST_STEP_DELAY" in os.environ else []),
    ]
