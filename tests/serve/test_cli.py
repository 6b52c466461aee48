"""`embedtune serve`: a wrong registry, name, backend or key file fails in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry", "{missing}"], "no registry at"),
        (["--registry", "{registry}", "--model", "nope"], "no version or tag 'nope'"),
        (["--registry", "{registry}", "--model", "../fin"], "no version or tag '../fin'"),
        (["--registry", "{registry}", "--backend", "gguf"], "invalid option: backend"),
        (["--registry", "{registry}", "--long-inputs", "drop"], "invalid option: long_inputs"),
        (["--registry", "{registry}", "--api-key-file", "{missing}"], "cannot read the API key"),
        (["--registry", "{registry}", "--backend", "onnx-int8"], "has no int8 ONNX export"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    serve_registry: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    filled = [a.format(missing=tmp_path / "missing", registry=serve_registry) for a in args]
    result = runner.invoke(app, ["serve", "--port", "1", *filled])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_api_keys_come_from_the_environment_and_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedtune.serve.config import ServeConfig, read_api_keys

    monkeypatch.setenv("EMBEDTUNE_API_KEYS", "k1, k2,")
    file = tmp_path / "keys"
    file.write_text("# comment\nk3\n\nk1\n")
    keys = read_api_keys(file)
    assert [k.get_secret_value() for k in keys] == ["k1", "k2", "k3"]
    config = ServeConfig(registry=tmp_path, api_keys=keys)
    assert "k1" not in repr(config) and "api_keys" not in config.model_dump()
