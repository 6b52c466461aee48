"""``embedtune run``: the whole pipeline from one YAML, resumable stage by stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from embedtune.cli.main import app
from tests.conftest import write_train_set
from tests.html_pages import assert_self_contained

runner = CliRunner()
SHIP = ("export", "register", "index")


def _config(tmp_path: Path, train_set: Path, model: Path, **extra: object) -> Path:
    test_set = write_train_set(tmp_path / "held", n=30, split="test")
    config = {
        "output": str(tmp_path / "run"),
        "data": {"train": str(train_set), "test": str(test_set)},
        "preset": "fast",
        "train": {
            "base_model": str(model),
            "batch_size": 8,
            "learning_rate": 1e-3,
            "device": "cpu",
            "passages": {"window": 12, "stride": 6},
        },
        **extra,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_does_every_stage_once_and_resumes(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    registry = tmp_path / "registry"
    path = _config(
        tmp_path,
        train_set,
        train_model_dir,
        export={"formats": ["onnx"]},
        registry={"path": str(registry), "name": "topics", "tags": ["production"]},
        index={"path": str(tmp_path / "index"), "encoder": "fp32"},
    )
    run = tmp_path / "run"
    # a mistake in a late stage's settings fails before the first stage writes anything ...
    good = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**good, "train": {**good["train"], "strategy": "lorra"}}))
    bad = runner.invoke(app, ["run", str(path)])
    assert bad.exit_code == 2 and "unknown strategy 'lorra'" in bad.output
    assert not run.exists() or not any(run.iterdir())
    # ... so the fixed config runs in the same folder
    path.write_text(yaml.safe_dump(good))
    first = runner.invoke(app, ["run", str(path)])
    assert first.exit_code == 0, first.output
    assert "tuned-hybrid" in first.output
    for stage in ("ingest", "govern", "analyze", "pairs", "train", "evaluate"):
        assert (run / "stages" / f"{stage}.json").is_file()
    report = json.loads((run / "eval" / "report.json").read_text())
    assert set(report["systems"]) >= {"bm25", "base-maxp", "tuned-maxp", "tuned-hybrid"}
    assert report["models"]["tuned"]["passages"]["window"] == 12
    chosen = json.loads((run / "model" / "embedtune.json").read_text())["fusion"]
    assert report["fusion"]["tuned"]["weight"] == chosen["tuned"]["weight"]
    assert report["fusion"]["base"]["weight"] == chosen["base"]["weight"]
    assert (run / "model.work" / "pairs.jsonl").is_file()
    # the run's page: the evaluation's figures with the training, forgetting and analysis
    page = assert_self_contained(run / "report.html")
    for title in ("Outcome on dev", "Scores with intervals", "Per query (ndcg@10)", "Training"):
        assert f"<h2>{title}</h2>" in page, title
    assert "The corpus and the tokenizer" in page and "training loss" in page
    # ... then shipped: exported, registered with its report and export, tagged, indexed
    stages = {s: json.loads((run / "stages" / f"{s}.json").read_text()) for s in SHIP}
    version = stages["register"]["version"]
    listed = runner.invoke(app, ["registry", "show", "production", "--registry", str(registry)])
    assert listed.exit_code == 0 and version in listed.output and "topics" in listed.output
    assert stages["register"]["export"] is not None
    where = ["--index", str(tmp_path / "index"), "--registry", str(registry)]
    found = runner.invoke(
        app, ["search", "topic7 number 7", *where, "--version", "production", "--encoder", "fp32"]
    )
    assert found.exit_code == 0, found.output
    hits = [line.split()[2] for line in found.output.splitlines()]  # rank, score, id
    assert len(hits) == 10 and all(hit.startswith("d") for hit in hits)
    # a finished stage is not redone: drop the evaluation only and rerun
    model_mtime = (run / "model" / "model.safetensors").stat().st_mtime_ns
    (run / "stages" / "evaluate.json").unlink()
    second = runner.invoke(app, ["run", str(path)])
    assert second.exit_code == 0, second.output
    assert (run / "model" / "model.safetensors").stat().st_mtime_ns == model_mtime
    # the run folder belongs to one config
    changed = yaml.safe_load(path.read_text())
    changed["train"]["learning_rate"] = 5e-4
    path.write_text(yaml.safe_dump(changed))
    refused = runner.invoke(app, ["run", str(path)])
    assert refused.exit_code == 2 and "was made with another config" in refused.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"trian": {}}, "trian: Extra inputs are not permitted"),
        ({"preset": "turbo"}, "unknown preset 'turbo'"),
        ({"train": {"base_model": "/nope/model"}}, "is not a local folder"),
        ({"train": {"epocs": 1}}, "epocs: Extra inputs are not permitted"),
        ({"train": {"device": "tpu"}}, "device 'tpu': use cpu, cuda, cuda:N or mps"),
        ({"train": {"probes": [{"data": "/nope/probe"}]}}, "/nope/probe"),
        ({"eval": {"systems": ["bm99"]}}, "bm99"),
        ({"governance": {"redact": True, "mode": "hash"}}, "EMBEDTUNE_REDACT_KEY"),
        ({"governance": {"ner_model": "/nope/ner"}}, "governance.ner_model: /nope/ner"),
        ({"export": {"formats": ["tflite"]}}, "tflite"),
        ({"registry": {"tags": ["abc123"]}}, "'abc123' cannot be a tag"),
        ({"registry": {"name": "[/]"}}, "cannot be a version name"),
        ({"index": {}}, "add a `registry:` block"),
        ({"registry": {}, "index": {"encoder": "int8"}}, "add an `export:` block"),
    ],
)
def test_config_mistakes_are_named(
    tmp_path: Path,
    train_set: Path,
    train_model_dir: Path,
    extra: dict,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMBEDTUNE_REDACT_KEY", raising=False)
    path = _config(tmp_path, train_set, train_model_dir)
    config = yaml.safe_load(path.read_text())
    for key, value in extra.items():
        if key == "train":
            config["train"].update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert message in result.output
    run = tmp_path / "run"  # refused before the first stage: nothing written
    assert not run.exists() or not any(run.iterdir())


def test_filter_that_removes_everything_is_a_clear_error(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    path = _config(tmp_path, train_set, train_model_dir)
    config = yaml.safe_load(path.read_text())
    config["train"]["pairs"] = {"negatives": {"margin": 10.0}}
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "removed every hard negative" in result.output


def test_empty_pairs_file_is_a_clear_error(tmp_path: Path, train_model_dir: Path) -> None:
    empty = tmp_path / "pairs.jsonl"
    empty.write_text("")
    result = runner.invoke(
        app,
        [
            "train",
            "--pairs",
            str(empty),
            "--output",
            str(tmp_path / "m"),
            "--base-model",
            str(train_model_dir),
        ],
    )
    assert result.exit_code == 2 and "no pairs" in result.output


def test_redacted_run_leaves_no_planted_value_or_secret_in_any_artefact(
    tmp_path: Path, train_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    planted = {"email": "jane.roe@clinic-mail.org", "ssn": "536-22-1987", "phone": "(212) 555-0188"}
    secret = "hash-key-DO-NOT-LEAK-93817"
    monkeypatch.setenv("EMBEDTUNE_REDACT_KEY", secret)
    train = write_train_set(tmp_path / "train")
    corpus = (train / "corpus.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in corpus]
    rows[3]["text"] += f" contact {planted['email']}"
    rows[7]["text"] += f" ssn {planted['ssn']}"
    (train / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = [json.loads(line) for line in (train / "queries.jsonl").read_text().splitlines()]
    queries[5]["text"] += f" call {planted['phone']}"
    (train / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    path = _config(tmp_path, train, train_model_dir, governance={"redact": True, "mode": "hash"})
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    govern = json.loads((run / "stages" / "govern.json").read_text())
    found = govern["reports"]["train"]["types"]
    assert {k: v["values"] for k, v in found.items()} == {"email": 1, "ssn": 1, "phone": 1}
    assert govern["data"]["train"] == str(run / "redacted" / "train")
    redacted = (run / "redacted" / "train" / "corpus.jsonl").read_text()
    assert "contact [EMAIL:" in redacted and "ssn [SSN:" in redacted
    card = (run / "model" / "README.md").read_text()
    assert '"mode": "hash"' in card  # the manifest says which redaction the model saw
    searched = [run, Path(os.environ["EMBEDTUNE_CACHE"])]
    blobs = [p.read_bytes() for root in searched for p in root.rglob("*") if p.is_file()]
    blobs += [result.output.encode(), path.read_bytes()]
    for needle in [*planted.values(), secret]:
        assert not any(needle.encode() in blob for blob in blobs), needle
    assert (run / "analysis" / "analysis.html").is_file()


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).parents[1] / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_configs_are_valid(example: Path) -> None:
    from embedtune.run.config import load_run_config

    if example.name.startswith("compare"):  # not runs: `embedtune compare`'s own configs
        from embedtune.compare.config import load_compare_config

        assert load_compare_config(example).output.startswith("runs/")
        return
    config = load_run_config(example)
    assert config.output.startswith("runs/")
    if config.monitor is not None:  # its watcher borrows the run's registry and tags
        from embedtune.run.config import load_watch_config

        watch = load_watch_config(example)
        assert config.registry is not None
        assert (watch.registry, watch.models) == (config.registry.path, config.registry.tags)
