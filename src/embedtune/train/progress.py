"""Training progress on the terminal: one bar of optimizer steps (with the latest loss on it)
instead of the trainer's bar and raw ``{'loss': ...}`` dicts; each logged dict becomes one
embedtune DEBUG line (shown with ``--verbose``).

Imports transformers: import this module inside the function that trains, not at the top of
a module that ``import embedtune`` reaches."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from embedtune.console import progress

logger = logging.getLogger(__name__)


def use_embedtune_progress(trainer: Any) -> None:
    """Swap a built (sentence-transformers or transformers) trainer's progress callback —
    ``ProgressCallback``, or ``PrinterCallback`` where ``disable_tqdm`` is set — for
    :class:`TrainingProgress`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(TrainingProgress())


def _format(logs: dict[str, Any]) -> str:
    shown = {k: v for k, v in logs.items() if k != "total_flos"}
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
    )


class TrainingProgress(TrainerCallback):
    """One bar of training steps on the main process; log dicts as DEBUG lines.

    A dev evaluation during training has a bar of its own (``dev: encode``, from the
    evaluator's search): on a large dev pool it can take minutes.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step = state.global_step  # past steps when resuming from a checkpoint
        if state.is_world_process_zero:
            self._bar = progress(
                desc="train",
                total=state.max_steps,
                initial=state.global_step,
                unit="step",
                leave=True,  # the finished bar records steps, time and the last loss
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.update(state.global_step - self._step)
        self._step = state.global_step

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if self._bar is not None and "loss" in logs:
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4g}", refresh=False)
        logger.debug("step %d/%d: %s", state.global_step, state.max_steps, _format(logs))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["TrainingProgress", "use_embedtune_progress"]
