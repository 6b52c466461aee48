"""The terminal: one line per stage and embedtune's own bars; no library chatter unless
--verbose; nothing on stderr with --quiet; errors stay one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from embedtune import console
from tests.conftest import write_train_set

# What the libraries print when left alone (transformers, sentence-transformers, the trainer).
CHATTER = ("Loading weights", "Writing model shards", "Computing widget examples", "it/s]")


def _env() -> dict[str, str]:
    # An in-process CLI test may have quieted this process's environment: start from defaults.
    env = {k: v for k, v in os.environ.items() if k not in console._QUIET_ENV}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "embedtune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def test_eval_shows_stage_lines_and_own_bars_but_no_library_chatter(
    train_model_dir: Path, tmp_path: Path
) -> None:
    # 200 judged queries and no duplicate documents: a run with nothing to warn about
    data = write_train_set(tmp_path / "data", n=200, split="test")
    code, out, err = _finish(
        _start(
            *("eval", str(data), "--base-model", str(train_model_dir), "--systems", "base"),
            *("--output", str(tmp_path / "out")),
        )
    )
    assert code == 0, err
    assert "evaluate: 200 judged queries" in err  # the stage's line
    assert "encode" in err  # embedtune's own bar
    for text in CHATTER:
        assert text not in err and text not in out, text
    assert "WARNING" not in err
    assert "base" in out  # the results table


def test_quiet_is_silent_verbose_adds_debug_lines_errors_stay_one_line(
    train_model_dir: Path, tmp_path: Path
) -> None:
    def add(*options: str, model: Path = train_model_dir) -> subprocess.Popen[str]:
        registry = tmp_path / f"registry{len(list(tmp_path.iterdir()))}"
        registry.mkdir()
        return _start(*options, "registry", "add", str(model), "--registry", str(registry))

    # light commands (no torch), started together
    normal, quiet, verbose = add(), add("--quiet"), add("--verbose")
    both = add("--quiet", "--verbose")
    missing = add("--quiet", model=tmp_path / "missing")
    code, out, err = _finish(normal)
    assert code == 0, err
    assert "INFO" in err and "added version" in err
    code, out, err = _finish(quiet)
    assert code == 0, err
    assert err == ""
    assert out.startswith("version ")  # results still go to stdout
    code, _, err = _finish(verbose)
    assert code == 0, err
    assert "DEBUG" in err and "python 3." in err  # the versions line, for bug reports
    for process in (both, missing):
        code, out, err = _finish(process)
        assert code == 2
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err + out


def test_quiet_turns_embedtune_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_verbosity", "normal")
    assert not console.progress(range(2), desc="x").disable
    assert console.progress(range(2), desc="x", enabled=False).disable
    monkeypatch.setattr(console, "_verbosity", "quiet")
    assert not console.progress_enabled()
    assert isinstance(console.progress(range(2), desc="x"), console.ProgressLines)
    assert console.progress(range(2), desc="x", enabled=False).disable


def test_quiet_mode_says_how_far_a_long_step_is_in_structured_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(console, "_verbosity", "quiet")
    assert list(console.progress(range(3), desc="short step")) == [0, 1, 2]
    assert capsys.readouterr().err == ""  # a step shorter than the interval says nothing
    monkeypatch.setattr(console, "PROGRESS_LINE_SECONDS", 0.0)
    bar = console.progress(desc="encode passages", total=4, unit="psg")
    bar.update(1)
    bar.update(3)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith('progress step="encode passages" done=1 total=4 unit=psg rate=')
    assert "eta_s=" in lines[0] and "eta_s=" not in lines[-1]
    assert " done=4 total=4 " in lines[-1] and lines[-1].endswith("finished=true")


def test_configure_output_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="quiet, normal, verbose"):
        console.configure_output("loud")  # type: ignore[arg-type]


def test_training_progress_logs_the_loss_as_debug_not_a_dict(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers.trainer_callback import (
        CallbackHandler,
        DefaultFlowCallback,
        PrinterCallback,
        ProgressCallback,
    )

    from embedtune.train.progress import TrainingProgress, use_embedtune_progress

    defaults = [DefaultFlowCallback(), ProgressCallback(), PrinterCallback()]
    handler = CallbackHandler(defaults, None, None, None, None)
    trainer = SimpleNamespace(
        remove_callback=handler.remove_callback, add_callback=handler.add_callback
    )
    use_embedtune_progress(trainer)
    kinds = [type(c) for c in handler.callbacks]
    assert TrainingProgress in kinds
    assert ProgressCallback not in kinds and PrinterCallback not in kinds

    caplog.set_level(logging.DEBUG, logger="embedtune.train.progress")
    callback = TrainingProgress()
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, max_steps=2)
    callback.on_train_begin(None, state, None)
    state.global_step = 1
    callback.on_step_end(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 1.5, "grad_norm": 2.25, "total_flos": 9.0})
    callback.on_train_end(None, state, None)
    ours = [r for r in caplog.records if r.name == "embedtune.train.progress"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.DEBUG, "step 1/2: loss 1.5, grad_norm 2.25")
    ]
    assert "{'loss'" not in capsys.readouterr().out
