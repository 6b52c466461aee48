"""The registry does not trust what it reads: names and tags have a grammar and are printed
escaped, tags cannot impersonate ids, weights are re-hashed when loaded, links in a model
folder are refused, a report must be an eval report, and a registry path must be a registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.errors import ConfigError, DataError
from embedtune.registry import Registry
from embedtune.testing import build_tiny_model

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    a = build_tiny_model(root / "a", ["alpha beta gamma"], seed=1)
    b = build_tiny_model(root / "b", ["alpha beta gamma"], seed=2)
    return a, b


def _one_line_error(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and output.count("\n") == 1, output
    assert output.startswith("error: "), output
    return str(output)


def _edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


# --- names and tags: a grammar on the way in, escaped on the way out ---------------------------


@pytest.mark.parametrize("bad", ["[/]", "fin [v2]", "a\nb", "", "-x", "x" * 65, "a/b"])
def test_names_have_a_grammar(models: tuple[Path, Path], tmp_path: Path, bad: str) -> None:
    a, _ = models
    with pytest.raises(ConfigError, match="cannot be a version name"):
        Registry(tmp_path / "reg").add(a, name=bad)
    assert not (tmp_path / "reg").exists()  # refused before anything is written


@pytest.mark.parametrize("bad", ["[/]", "a\nb", "fin [v2]", "", "a/b", "-x", "x" * 65])
def test_tags_have_a_grammar(models: tuple[Path, Path], tmp_path: Path, bad: str) -> None:
    a, _ = models
    reg = Registry(tmp_path / "reg")
    vid = reg.add(a).id
    with pytest.raises(ConfigError, match="cannot be a tag"):
        reg.promote(vid, bad)
    assert reg.tags() == {}


def test_default_name_from_an_odd_folder_name_fits_the_grammar(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = models
    odd = tmp_path / "fin [v2]"
    shutil.copytree(a, odd)
    assert Registry(tmp_path / "reg").add(odd).name == "fin-v2"


def test_cli_refuses_a_bad_name_and_tag_in_one_line(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = models
    registry = str(tmp_path / "reg")
    refused = runner.invoke(
        app, ["registry", "add", str(a), "--registry", registry, "--name", "[/]"]
    )
    assert "cannot be a version name" in _one_line_error(refused)
    vid = runner.invoke(app, ["registry", "add", str(a), "--registry", registry]).output.split()[1]
    bad_tag = runner.invoke(app, ["registry", "promote", vid, "a\nb", "--registry", registry])
    assert "cannot be a tag" in _one_line_error(bad_tag)


def test_list_prints_names_and_tags_from_disk_literally(
    models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedtune.cli import main

    monkeypatch.setattr(main.console, "width", 200)  # the whole table, uncut
    a, b = models
    registry = tmp_path / "reg"
    reg = Registry(registry)
    va, vb = reg.add(a).id, reg.add(b).id
    # written by hand, or by an older release that had no grammar
    _edit_json(registry / "versions" / va / "version.json", name="[/]")
    _edit_json(registry / "versions" / vb / "version.json", name="fin [v2]")
    (registry / "tags.json").write_text(json.dumps({"new\nline": va, "[bold]x[/bold]": vb}))
    listed = runner.invoke(app, ["registry", "list", "--registry", str(registry)])
    assert listed.exit_code == 0, listed.output
    assert "[/]" in listed.output and "fin [v2]" in listed.output
    assert "[bold]x[/bold]" in listed.output
    assert "new\\nline" in listed.output and "new\nline" not in listed.output
    shown = runner.invoke(app, ["registry", "show", vb, "--registry", str(registry)])
    assert shown.exit_code == 0 and json.loads(shown.output)["name"] == "fin [v2]"


# --- tags cannot impersonate ids ---------------------------------------------------------------


def test_a_tag_cannot_be_an_id_prefix(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    reg = Registry(tmp_path / "reg")
    va, vb = reg.add(a).id, reg.add(b).id
    for bad in (vb[:6], vb, va[:4], "cafe", "0123", "BEEF"):
        with pytest.raises(ConfigError, match="cannot be a tag"):
            reg.promote(va, bad)
    assert reg.tags() == {}
    assert reg.promote(va, "cafe-2") == {"cafe-2": va}  # not hex: fine


def test_ids_resolve_before_tags(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    registry = tmp_path / "reg"
    reg = Registry(registry)
    va, vb = reg.add(a).id, reg.add(b).id
    # a tags.json written by hand or by an older release: the id prefix wins
    (registry / "tags.json").write_text(json.dumps({vb[:6]: va, "deadbeef": va}))
    assert reg.resolve(vb[:6]) == vb and reg.show(vb[:6]).id == vb
    assert reg.resolve("deadbeef") == va  # a hex-looking tag that is no id prefix still works


# --- weights are checked when a version is loaded ----------------------------------------------


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def test_verified_path_refuses_changed_weights(
    models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import embedtune.registry.registry as module

    a, _ = models
    reg = Registry(tmp_path / "reg")
    version = reg.add(a)
    hashed: list[str] = []
    real = module._fresh_sha256
    monkeypatch.setattr(
        module, "_fresh_sha256", lambda path, *args: hashed.append(path) or real(path, *args)
    )
    assert reg.verified_path(version.id) == Path(version.path)
    assert reg.verified_path(version.id[:6]) == Path(version.path)
    assert len(hashed) == 1  # hashed once per process per version
    weights = Path(version.path) / "model.safetensors"
    _flip_a_byte(weights)
    monkeypatch.setattr(module, "_VERIFIED", {})  # as in a new process
    with pytest.raises(DataError, match="does not match its hash") as caught:
        reg.verified_path(version.id)
    assert "\n" not in str(caught.value)
    _flip_a_byte(weights)  # back as added
    assert reg.verified_path(version.id) == Path(version.path)
    # within a process, a file that visibly changed (size, times, inode) is hashed again
    with weights.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DataError, match="does not match its hash"):
        reg.verified_path(version.id)


def test_a_changed_settings_record_is_refused_too(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = models
    reg = Registry(tmp_path / "reg")
    version = reg.add(a)
    (Path(version.path) / "extra.bin").write_bytes(b"\0")
    with pytest.raises(DataError, match="does not match its hash"):
        reg.verified_path(version.id)


def test_the_index_loads_only_verified_weights(models: tuple[Path, Path], tmp_path: Path) -> None:
    from embedtune.index.index import load_encoder

    a, _ = models
    reg = Registry(tmp_path / "reg")
    version = reg.add(a)
    _flip_a_byte(Path(version.path) / "model.safetensors")
    with pytest.raises(DataError, match="does not match its hash"):
        load_encoder(reg, version.id, "torch")
    _flip_a_byte(Path(version.path) / "model.safetensors")  # back as added
    assert load_encoder(reg, version.id, "torch")[1].version == version.id


# --- links in a model folder -------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/etc", "/etc/hostname", "model.safetensors"])
def test_links_in_a_model_folder_are_refused(
    models: tuple[Path, Path], tmp_path: Path, target: str
) -> None:
    a, _ = models
    copy = tmp_path / "linked"
    shutil.copytree(a, copy)
    (copy / "sub").mkdir()
    (copy / "sub" / "link").symlink_to(target)
    with pytest.raises(DataError, match="link") as caught:
        Registry(tmp_path / "reg").add(copy)
    assert str(copy / "sub" / "link") in str(caught.value)
    assert not (tmp_path / "reg").exists()
    result = runner.invoke(app, ["registry", "add", str(copy), "--registry", str(tmp_path / "r")])
    assert "sub/link" in _one_line_error(result)


# --- --report must be an eval report -----------------------------------------------------------

GOOD_REPORT = {
    "systems": {"bm25": {"ndcg@10": 0.4}, "tuned-maxp": {"ndcg@10": 0.6}},
    "data": {"split": "test", "evaluated_queries": 3},
}


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        "\xff\xfe",
        "[1, 2]",
        '{"a": 1}',
        '{"systems": {}, "data": {}}',
        '{"systems": {"x": 1}, "data": {}}',
        '{"systems": {"x": {"ndcg@10": "high"}}, "data": {}}',
        '{"systems": {"x": {"ndcg@10": 0.5}}, "data": []}',
    ],
)
def test_report_must_be_an_eval_report(
    models: tuple[Path, Path], tmp_path: Path, content: str
) -> None:
    a, _ = models
    report = tmp_path / "report.json"
    report.write_text(content, encoding="latin-1")
    with pytest.raises(DataError, match="not an embedtune eval report"):
        Registry(tmp_path / "reg").add(a, report=report)
    assert not (tmp_path / "reg").exists()
    result = runner.invoke(
        app, ["registry", "add", str(a), "--registry", str(tmp_path / "r"), "--report", str(report)]
    )
    assert "not an embedtune eval report" in _one_line_error(result)
    assert not (tmp_path / "r").exists()


def test_a_good_report_is_kept(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = models
    report = tmp_path / "report.json"
    report.write_text(json.dumps(GOOD_REPORT))
    version = Registry(tmp_path / "reg").add(a, report=report)
    assert version.eval is not None and version.eval.metrics["tuned-maxp"] == 0.6
    assert version.eval.split == "test" and version.eval.queries == 3


def test_a_missing_report_is_one_line(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = models
    result = runner.invoke(
        app,
        ["registry", "add", str(a), "--registry", str(tmp_path / "r"), "--report", "nope.json"],
    )
    assert "nope.json" in _one_line_error(result)
    assert not (tmp_path / "r").exists()


# --- a registry path must be a registry --------------------------------------------------------


def test_list_on_a_missing_folder_or_a_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["registry", "list", "--registry", str(missing)])
    assert f"no registry at {missing}" in _one_line_error(result)
    file = tmp_path / "file"
    file.write_text("x")
    result = runner.invoke(app, ["registry", "list", "--registry", str(file)])
    assert "not a registry folder" in _one_line_error(result)
    for command in (["show", "x"], ["promote", "x", "production"], ["diff", "x", "y"]):
        for root in (missing, file):
            result = runner.invoke(app, ["registry", *command, "--registry", str(root)])
            _one_line_error(result)
    assert not missing.exists()
    with pytest.raises(ConfigError, match="no registry at"):
        Registry(missing).versions()


def test_an_empty_registry_folder_lists_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    result = runner.invoke(app, ["registry", "list", "--registry", str(tmp_path / "reg")])
    assert result.exit_code == 0, result.output


def test_a_failed_promote_does_not_create_the_registry(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError, match="no registry at"):
        Registry(missing).promote("abc", "production")
    with pytest.raises(ConfigError, match="cannot be a tag"):
        Registry(missing).promote("abc", "[/]")
    assert not missing.exists()
    a, _ = models
    reg = Registry(tmp_path / "reg")
    reg.add(a)
    with pytest.raises(ConfigError, match="no version or tag"):
        reg.promote("nightly", "production")
    assert reg.tags() == {} and not (tmp_path / "reg" / "tags.json").exists()


def test_add_to_a_file_is_one_line(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = models
    file = tmp_path / "file"
    file.write_text("x")
    result = runner.invoke(app, ["registry", "add", str(a), "--registry", str(file)])
    assert "not a registry folder" in _one_line_error(result)
