"""Every command × a bad input: exit code 2, one line on stderr naming the problem, no
traceback, and nothing written anywhere (the inputs, the outputs' places, the cache).

A new command is covered by adding rows to CASES.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.registry import Registry
from tests.conftest import write_beir

runner = CliRunner()


@dataclass
class World:
    """What a row's command line can point at, all inside one test's folder."""

    root: Path
    data: Path  # a good BEIR folder (split test)
    model: Path  # a sentence-transformers model folder (a copy of the tiny model)
    existing: Path  # an output folder that already holds something
    registry: Path  # a registry with one version tagged "production"
    version: str
    bad_json: Path  # a file that is not JSON

    def p(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    root = tmp_path_factory.mktemp("template")
    model = root / "model"
    shutil.copytree(tiny_model, model)
    registry = Registry(root / "registry")
    registry.promote(registry.add(model, name="tiny").id, "production")
    return root


@pytest.fixture
def world(tmp_path: Path, registry_template: Path) -> World:
    root = tmp_path / "w"
    shutil.copytree(registry_template, root)
    data = write_beir(root / "data")
    existing = root / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("an earlier result\n")
    bad_json = root / "notes.json"
    bad_json.write_text("this is not json\n")
    version = next(iter(Registry(root / "registry").tags().values()))
    return World(root, data, root / "model", existing, root / "registry", version, bad_json)


def _break_corpus(w: World) -> None:
    with open(w.data / "corpus.jsonl", "a") as handle:
        handle.write("{broken\n")


def _write(name: str, text: str) -> Callable[[World], None]:
    def setup(w: World) -> None:
        (w.root / name).write_text(text)

    return setup


def _monitor_profile(w: World) -> None:
    """A small synthetic monitor profile folder at w.root/profile."""
    import numpy as np

    from embedtune.monitor import DriftSettings, build_profile_from_embeddings, save_profile

    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    settings = DriftSettings(calibration_windows=0, permutations=50)
    save_profile(build_profile_from_embeddings(x, settings=settings), w.root / "profile")


def _compare_config(output: tuple[str, ...] = ("cmp",), **extra: object) -> Callable[[World], None]:
    """A compare YAML at w.root/cmp.yaml: full and lora on the tiny model, with ``extra``."""

    def setup(w: World) -> None:
        config = {
            "output": w.p(*output),
            "data": {"train": str(w.data), "train_split": "test", "test": str(w.data)},
            "train": {"base_model": str(w.model)},
            "approaches": ["full", "lora"],
            **extra,
        }
        (w.root / "cmp.yaml").write_text(json.dumps(config))

    return setup


@dataclass
class Case:
    id: str
    args: Callable[[World], list[str]]
    message: str  # a part of the one line the user must see
    setup: Callable[[World], None] | None = None


REG = "--registry"
CASES = [
    # ingest
    Case("ingest-missing", lambda w: ["ingest", w.p("nope"), "-o", w.p("o")], "nope"),
    Case(
        "ingest-into-itself", lambda w: ["ingest", str(w.data), "-o", str(w.data)], "is the input"
    ),
    Case(
        "ingest-inside-input",
        lambda w: ["ingest", str(w.data), "-o", w.p("data", "clean")],
        "lies inside the input",
    ),
    Case(
        "ingest-existing", lambda w: ["ingest", str(w.data), "-o", str(w.existing)], "--overwrite"
    ),
    Case(
        "ingest-malformed",
        lambda w: ["ingest", str(w.data), "-o", w.p("o")],
        "malformed JSON",
        _break_corpus,
    ),
    Case(
        "ingest-format", lambda w: ["ingest", str(w.data), "-o", w.p("o"), "--format", "xml"], "xml"
    ),
    # eval
    Case("eval-missing", lambda w: ["eval", w.p("nope"), "--systems", "bm25"], "nope"),
    Case(
        "eval-existing",
        lambda w: ["eval", str(w.data), "--systems", "bm25", "-o", str(w.existing)],
        "--overwrite",
    ),
    Case(
        "eval-inside-data",
        lambda w: ["eval", str(w.data), "--systems", "bm25", "-o", w.p("data", "report")],
        "lies inside the input",
    ),
    Case("eval-system", lambda w: ["eval", str(w.data), "--systems", "bm99"], "bm99"),
    Case("eval-metric", lambda w: ["eval", str(w.data), "--metrics", "ndcg@x"], "ndcg@x"),
    Case(
        "eval-split", lambda w: ["eval", str(w.data), "--split", "dev", "--systems", "bm25"], "dev"
    ),
    Case(
        "eval-malformed",
        lambda w: ["eval", str(w.data), "--systems", "bm25"],
        "corpus.jsonl:7: malformed JSON",
        _break_corpus,
    ),
    # pairs
    Case(
        "pairs-onto-corpus",
        lambda w: ["pairs", str(w.data), "-o", w.p("data", "corpus.jsonl")],
        "lies inside the input",
    ),
    Case("pairs-no-source", lambda w: ["pairs", "-o", w.p("o")], "give DATA"),
    Case(
        "pairs-ranks", lambda w: ["pairs", str(w.data), "-o", w.p("o"), "--ranks", "30-3"], "ranks"
    ),
    Case(
        "pairs-supervision",
        lambda w: ["pairs", str(w.data), "-o", w.p("o"), "--supervision", "guess"],
        "guess",
    ),
    Case(
        "pairs-file-inside-output",
        lambda w: ["pairs", "--from-file", w.p("existing", "keep.txt"), "-o", str(w.existing)],
        "holds the input",
    ),
    # train
    Case(
        "train-strategy",
        lambda w: ["train", str(w.data), "-o", w.p("m"), "--strategy", "lorra"],
        "lorra",
    ),
    Case(
        "train-device", lambda w: ["train", str(w.data), "-o", w.p("m"), "--device", "tpu"], "tpu"
    ),
    Case("train-existing", lambda w: ["train", str(w.data), "-o", str(w.existing)], "--overwrite"),
    Case(
        "train-inside-data",
        lambda w: ["train", str(w.data), "-o", w.p("data", "model")],
        "lies inside the input",
    ),
    Case(
        "train-inside-base",
        lambda w: ["train", str(w.data), "-o", w.p("model", "m"), "--base-model", str(w.model)],
        "lies inside the input",
    ),
    Case(
        "train-mining",  # a pairs-stage setting, passed through the recipe's pairs: section
        lambda w: ["train", str(w.data), "-o", w.p("m"), "--mining", "all"],
        "'candidates'",
    ),
    Case(
        "train-dev-pool-from",
        lambda w: ["train", str(w.data), "-o", w.p("m"), "--dev-pool-from", "base"],
        "dev_pool_from",
    ),
    Case(
        "train-dev-pool",
        lambda w: ["train", str(w.data), "-o", w.p("m"), "--dev-pool", "5"],
        "dev_pool",
    ),
    Case(
        "train-matryoshka",
        lambda w: ["train", str(w.data), "-o", w.p("m"), "--matryoshka", "a,b"],
        "a,b",
    ),
    Case(
        "train-pairs-folder",
        lambda w: ["train", "--pairs", str(w.existing), "-o", w.p("m")],
        "not a pairs folder",
    ),
    # analyze
    Case(
        "analyze-existing", lambda w: ["analyze", str(w.data), "-o", str(w.existing)], "--overwrite"
    ),
    Case(
        "analyze-inside-data",
        lambda w: ["analyze", str(w.data), "-o", w.p("data", "a")],
        "lies inside",
    ),
    Case("analyze-missing", lambda w: ["analyze", w.p("nope"), "-o", w.p("a")], "nope"),
    # scan
    Case("scan-existing", lambda w: ["scan", str(w.data), "-o", str(w.existing)], "--overwrite"),
    Case(
        "scan-inside-data", lambda w: ["scan", str(w.data), "-o", w.p("data", "s")], "lies inside"
    ),
    Case("scan-type", lambda w: ["scan", str(w.data), "-o", w.p("s"), "--types", "dna"], "dna"),
    Case(
        "scan-hash-without-key",
        lambda w: ["scan", str(w.data), "-o", w.p("s"), "--redact", "--mode", "hash"],
        "EMBEDTUNE_REDACT_KEY",
    ),
    # export
    Case(
        "export-existing",
        lambda w: ["export", str(w.model), "-o", str(w.existing), "--no-eval"],
        "--overwrite",
    ),
    Case(
        "export-inside-model",
        lambda w: ["export", str(w.model), "-o", w.p("model", "x"), "--no-eval"],
        "lies inside",
    ),
    Case(
        "export-format",
        lambda w: ["export", str(w.model), "-o", w.p("x"), "--formats", "tflite"],
        "tflite",
    ),
    Case(
        "export-int8-unchecked", lambda w: ["export", str(w.model), "-o", w.p("x")], "--eval-data"
    ),
    # registry
    Case(
        "registry-add-not-model",
        lambda w: ["registry", "add", str(w.data), REG, str(w.registry)],
        "modules.json",
    ),
    Case(
        "registry-add-inside-model",
        lambda w: ["registry", "add", str(w.model), REG, w.p("model", "reg")],
        "lies inside the input",
    ),
    Case(
        "registry-add-markup-name",
        lambda w: ["registry", "add", str(w.model), REG, str(w.registry), "--name", "[/]"],
        "name",
    ),
    Case(
        "registry-add-report-not-json",
        lambda w: [
            "registry",
            "add",
            str(w.model),
            REG,
            str(w.registry),
            "--report",
            str(w.bad_json),
        ],
        "notes.json",
    ),
    Case("registry-list-missing", lambda w: ["registry", "list", REG, w.p("nope")], "nope"),
    Case("registry-list-file", lambda w: ["registry", "list", REG, str(w.bad_json)], "notes.json"),
    Case(
        "registry-show-unknown", lambda w: ["registry", "show", "zzz", REG, str(w.registry)], "zzz"
    ),
    Case(
        "registry-promote-bad-tag",
        lambda w: ["registry", "promote", w.version, "a\nb", REG, str(w.registry)],
        "tag",
    ),
    Case(
        "registry-promote-id-prefix",
        lambda w: ["registry", "promote", "production", w.version[:6], REG, str(w.registry)],
        "tag",
    ),
    Case(
        "registry-diff-unknown",
        lambda w: ["registry", "diff", "production", "zzz", REG, str(w.registry)],
        "zzz",
    ),
    # index and search
    Case(
        "index-unknown-version",
        lambda w: [
            "index",
            str(w.data),
            "--version",
            "zzz",
            REG,
            str(w.registry),
            "--index",
            w.p("i"),
        ],
        "zzz",
    ),
    Case(
        "index-inside-data",
        lambda w: [
            "index",
            str(w.data),
            "--version",
            "production",
            REG,
            str(w.registry),
            "--index",
            w.p("data", "i"),
        ],
        "lies inside the input",
    ),
    Case(
        "index-backend",
        lambda w: [
            "index",
            str(w.data),
            "--version",
            "production",
            REG,
            str(w.registry),
            "--backend",
            "faiss",
        ],
        "faiss",
    ),
    Case(
        "search-k",
        lambda w: ["search", "revenue", "-k", "0", REG, str(w.registry), "--index", w.p("i")],
        "k",
    ),
    Case(
        "search-no-index",
        lambda w: ["search", "revenue", REG, str(w.registry), "--index", w.p("i")],
        "index",
    ),
    # run
    Case("run-missing-config", lambda w: ["run", w.p("nope.yaml")], "nope.yaml"),
    Case(
        "run-bad-yaml", lambda w: ["run", w.p("run.yaml")], "run.yaml", _write("run.yaml", "a: [\n")
    ),
    Case(
        "run-strategy",
        lambda w: ["run", w.p("run.yaml")],
        "lorra",
        lambda w: (w.root / "run.yaml").write_text(
            json.dumps(
                {
                    "output": w.p("r"),
                    "data": {"train": str(w.data), "test": str(w.data)},
                    "train": {"strategy": "lorra", "base_model": str(w.model)},
                }
            )
        ),
    ),
    Case(
        "run-inside-data",
        lambda w: ["run", w.p("run.yaml")],
        "lies inside the input",
        lambda w: (w.root / "run.yaml").write_text(
            json.dumps(
                {
                    "output": w.p("data", "run"),
                    "data": {"train": str(w.data), "test": str(w.data)},
                    "train": {"base_model": str(w.model)},
                }
            )
        ),
    ),
    Case("demo-onto-file", lambda w: ["demo", "-o", str(w.bad_json)], "notes.json"),
    # compare (every cell's settings are checked before the first cell starts)
    Case("compare-missing-config", lambda w: ["compare", w.p("nope.yaml")], "nope.yaml"),
    Case(
        "compare-approach",
        lambda w: ["compare", w.p("cmp.yaml")],
        "unknown approach 'lorra': choose from full, lora",
        _compare_config(approaches=["full", "lorra"]),
    ),
    Case(
        "compare-no-general-pairs",
        lambda w: ["compare", w.p("cmp.yaml")],
        "approach 'full+ewc' needs general_pairs",
        _compare_config(approaches=["full+ewc"]),
    ),
    Case(
        "compare-strategy",
        lambda w: ["compare", w.p("cmp.yaml")],
        "unknown strategy 'lorra'",
        _compare_config(overrides={"full": {"strategy": "lorra"}}),
    ),
    Case(
        "compare-inside-data",
        lambda w: ["compare", w.p("cmp.yaml")],
        "lies inside the input",
        _compare_config(output=("data", "cmp")),
    ),
    Case(
        "compare-only",
        lambda w: ["compare", w.p("cmp.yaml"), "--only", "full,nope"],
        "--only nope: no such cell",
        _compare_config(),
    ),
    # monitor
    Case("monitor-watch-missing", lambda w: ["monitor", "watch", w.p("nope.yaml")], "nope.yaml"),
    Case(
        "monitor-profile-missing-queries",
        lambda w: [
            "monitor",
            "profile",
            w.p("nope.jsonl"),
            "-o",
            w.p("p"),
            "--model",
            str(w.model),
        ],
        "nope.jsonl",
    ),
    Case(
        "monitor-profile-existing",
        lambda w: [
            "monitor",
            "profile",
            str(w.data),
            "-o",
            str(w.existing),
            "--model",
            str(w.model),
        ],
        "--overwrite",
    ),
    Case(
        "monitor-profile-no-place",
        lambda w: ["monitor", "profile", str(w.data), "--model", str(w.model)],
        "--output",
    ),
    Case(
        "monitor-check-missing-profile",
        lambda w: [
            "monitor",
            "check",
            str(w.bad_json),
            "--profile",
            w.p("nope"),
            REG,
            str(w.registry),
        ],
        "nope",
    ),
    Case(
        "monitor-check-version-without-profile",
        lambda w: [
            "monitor",
            "check",
            str(w.bad_json),
            "--version",
            "production",
            REG,
            str(w.registry),
        ],
        "no monitor profile",
    ),
    Case(
        "monitor-check-bad-window",
        lambda w: ["monitor", "check", str(w.bad_json), "--profile", w.p("profile")],
        "not a window record",
        lambda w: _monitor_profile(w),
    ),
    Case(
        "monitor-check-bad-npy",
        lambda w: ["monitor", "check", w.p("window.npy"), "--profile", w.p("profile")],
        "window.npy",
        lambda w: (_monitor_profile(w), _write("window.npy", "not an array")(w)),
    ),
    Case(
        "monitor-probe-missing",
        lambda w: [
            "monitor",
            "probe",
            w.p("nope"),
            "--version",
            "production",
            REG,
            str(w.registry),
        ],
        "nope",
    ),
    Case(
        "monitor-probe-bad-history",
        lambda w: [
            "monitor",
            "probe",
            str(w.data),
            "--version",
            "production",
            REG,
            str(w.registry),
            "--history",
            str(w.bad_json),
        ],
        "not a probe history line",
    ),
    Case(
        "monitor-canary-no-profile",
        lambda w: ["monitor", "canary", "--version", "production", REG, str(w.registry)],
        "no monitor profile",
    ),
    # serve (each refused before a model loads or a port is bound; the server never writes)
    Case("serve-no-registry", lambda w: ["serve", REG, w.p("nope")], "no registry at"),
    Case(
        "serve-unknown-model",
        lambda w: ["serve", REG, str(w.registry), "--model", "nope"],
        "no version or tag 'nope'",
    ),
    Case(
        "serve-backend",
        lambda w: ["serve", REG, str(w.registry), "--backend", "gguf"],
        "invalid option: backend",
    ),
    Case(
        "serve-no-export",
        lambda w: ["serve", REG, str(w.registry), "--backend", "onnx-int8"],
        "no int8 ONNX export",
    ),
    Case(
        "serve-key-file",
        lambda w: ["serve", REG, str(w.registry), "--api-key-file", w.p("nope")],
        "cannot read the API key file",
    ),
    Case(
        "pairs-mining",
        lambda w: ["pairs", str(w.data), "-o", w.p("o"), "--mining", "everything"],
        "mining",
    ),
]


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the roots, with size and modification time."""
    seen: dict[str, tuple[int, int]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath, name)
                stat = path.lstat()
                seen[str(path)] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return seen


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, world: World) -> None:
    if case.setup is not None:
        case.setup(world)
    cache = Path(os.environ["EMBEDTUNE_CACHE"])
    before = _snapshot(world.root, cache)
    result = runner.invoke(app, case.args(world))
    assert result.exit_code == 2, (result.exception, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and case.message in lines[0], lines[0]
    assert _snapshot(world.root, cache) == before, "a refused command wrote something"


def test_every_command_has_a_row() -> None:
    """A new command must come with its bad-input rows."""
    import typer.main

    group = typer.main.get_command(app)
    commands = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        commands |= {f"{name}-{sub}" for sub in subcommands} if subcommands else {name}
    missing = {command for command in commands if not any(c.id.startswith(command) for c in CASES)}
    assert not missing, f"add bad-input rows for: {sorted(missing)}"
