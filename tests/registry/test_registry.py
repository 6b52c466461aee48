"""Registry: content-addressed versions, lineage, tags, exports, locks and crash safety."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.errors import ConfigError
from embedtune.model_folder import ModelSettings, settings_path, write_settings
from embedtune.registry import ExportRecord, Registry, VersionDiff, VersionRecord
from embedtune.testing import build_tiny_model, settings_record

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    a = build_tiny_model(root / "a", ["alpha beta gamma"], seed=1)
    b = build_tiny_model(root / "b", ["alpha beta gamma"], seed=2)
    for model, lr in ((a, 1e-4), (b, 5e-5)):
        write_settings(model, _settings(lr))
    return a, b


def _settings(learning_rate: float) -> ModelSettings:
    """A settings record as training writes it, differing only in the learning rate."""
    config = {"learning_rate": learning_rate, "epochs": 2}
    return settings_record("tiny", "0" * 64, "full", config=config)


def test_versions_are_content_addressed_and_immutable(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = models
    reg = Registry(tmp_path / "reg")
    first = reg.add(a, name="first")
    assert isinstance(first, VersionRecord) and len(first.id) == 12
    assert first.lineage.base_model == {"name": "tiny", "sha256": "0" * 64}
    assert first.lineage.strategy == "full" and first.lineage.seed == 42
    assert first.dev is not None and first.dev["tuned"] == {"ndcg@10": 0.5}
    # a rewritten card or run record is not new content
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    (copy / "README.md").write_text("a new card")
    settings_path(copy).write_text(json.dumps({"seconds": 99}))
    assert reg.add(copy).id == first.id
    second = reg.add(b, parent=first.id)
    assert second.id != first.id and second.lineage.parent == first.id
    assert [v.id for v in reg.versions()] == [first.id, second.id]
    assert (Path(second.path) / "model.safetensors").is_file()


def test_version_json_keeps_its_keys_and_records_round_trip(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = models
    reg = Registry(tmp_path / "reg")
    version = reg.add(a, name="first")
    stored = json.loads((tmp_path / "reg" / "versions" / version.id / "version.json").read_text())
    assert list(stored) == [
        "id",
        "content_sha256",
        "model_sha256",
        "name",
        "created",
        "lineage",
        "dev",
        "eval",
    ]
    assert list(stored["lineage"]) == ["base_model", "strategy", "data", "config", "seed", "parent"]
    assert stored["eval"] is None and stored["lineage"]["parent"] is None
    # a record dumps to what is stored, plus what is looked up on reading
    assert version.model_dump() == {**stored, "tags": [], "exports": [], "path": version.path}
    # keys a newer release wrote are kept, not dropped
    stored["lineage"]["future"] = {"x": 1}
    record = VersionRecord.model_validate({**stored, "extra": True})
    assert record.model_dump()["lineage"]["future"] == {"x": 1} and record.model_dump()["extra"]


def test_tags_move_and_diff_names_what_changed(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    reg = Registry(tmp_path / "reg")
    va, vb = reg.add(a).id, reg.add(b).id
    reg.promote(va, "production")
    reg.promote(vb, "staging")
    reg.promote(vb, "production")  # the tag moves; versions stay
    assert reg.tags() == {"production": vb, "staging": vb}
    assert reg.show("production").tags == ["production", "staging"]
    assert reg.resolve(va[:6]) == va
    diff = reg.diff(va, vb)
    assert isinstance(diff, VersionDiff) and (diff.a, diff.b) == (va, vb)
    assert diff.config == {"learning_rate": [1e-4, 5e-5]} and diff.lineage == {}
    assert list(diff.model_dump()) == ["a", "b", "lineage", "config", "eval"]
    with pytest.raises(ConfigError, match="no version or tag 'nightly'"):
        reg.show("nightly")
    with pytest.raises(ConfigError, match="cannot be a tag"):
        reg.promote(va, vb)


def _add_in_process(model: Path, registry: Path, crash: str | None = None) -> subprocess.Popen:
    env = {**os.environ, **({"EMBEDTUNE_TEST_CRASH": crash} if crash else {})}
    code = (
        "import sys; from embedtune.registry.registry import Registry; "
        "print(Registry(sys.argv[2]).add(sys.argv[1]).id)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(model), str(registry)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_concurrent_adds_are_safe(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    registry = tmp_path / "reg"
    procs = [_add_in_process(m, registry) for m in (a, b, a, b)]
    ids = [p.communicate()[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
    assert sorted(v.id for v in Registry(registry).versions()) == sorted(set(ids))


def test_a_crash_mid_write_leaves_no_half_version(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = models
    registry = tmp_path / "reg"
    proc = _add_in_process(a, registry, crash="version")
    proc.communicate()
    assert proc.returncode == -9  # really killed, after copying, before the rename
    assert not (registry / "versions").exists() or not list((registry / "versions").iterdir())
    assert list((registry / ".staging").iterdir())  # the debris of the crash...
    record = Registry(registry).add(a)
    assert not list((registry / ".staging").iterdir())  # ...is cleared by the next writer
    assert (Path(record.path) / "modules.json").is_file()


def test_exports_are_children_of_their_version(models: tuple[Path, Path], tmp_path: Path) -> None:
    from embedtune.export import ExportConfig, export_model

    a, _ = models
    reg = Registry(tmp_path / "reg")
    version = reg.add(a).id
    export = tmp_path / "export"
    export_model(ExportConfig(model=str(a), output=export, formats=["onnx"], parity_texts=8))
    record = reg.add_export(export)  # found by the export's source hash
    assert isinstance(record, ExportRecord)
    assert record.version == version and record.files == {"fp32": "model.onnx"}
    assert reg.show(version).exports[0].id == record.id
    stored = json.loads((Path(record.path).parent / "export-record.json").read_text())
    assert list(stored) == ["id", "version", "created", "files", "parity", "path"]
    assert record.model_dump() == stored
    assert reg.add_export(export) == record  # the same export twice is one record
    with pytest.raises(ConfigError, match="no version holds the model"):
        Registry(tmp_path / "empty").add_export(export)


def test_registry_cli(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    registry = str(tmp_path / "reg")
    added = runner.invoke(app, ["registry", "add", str(a), "--registry", registry, "--name", "fin"])
    assert added.exit_code == 0, added.output
    vid = added.output.split()[1]
    assert added.output == f"version {vid} (fin)\n"
    promoted = runner.invoke(
        app, ["registry", "promote", vid, "production", "--registry", registry]
    )
    assert promoted.exit_code == 0 and promoted.output == f"production → {vid}\n"
    listed = runner.invoke(app, ["registry", "list", "--registry", registry])
    assert vid in listed.output and "production" in listed.output and "tiny" in listed.output
    shown = runner.invoke(app, ["registry", "show", "production", "--registry", registry])
    record = json.loads(shown.output)
    stored = json.loads((Path(registry) / "versions" / vid / "version.json").read_text())
    assert record == {**stored, "tags": ["production"], "exports": [], "path": record["path"]}
    other = runner.invoke(app, ["registry", "add", str(b), "--registry", registry])
    diff = runner.invoke(
        app, ["registry", "diff", vid, other.output.split()[1], "--registry", registry]
    )
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.output)["config"] == {"learning_rate": [1e-4, 5e-5]}
    missing = runner.invoke(app, ["registry", "add", str(tmp_path), "--registry", registry])
    assert missing.exit_code == 2 and "modules.json" in missing.output
    unknown = runner.invoke(app, ["registry", "show", "nightly", "--registry", registry])
    assert unknown.exit_code == 2 and "no version or tag 'nightly'" in unknown.output
