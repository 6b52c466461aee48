"""The public Python API: the README's example runs as written (on a tiny model and data),
and `import embedtune` stays light."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import embedtune

README = Path(__file__).parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_embedtune_loads_no_torch() -> None:
    # nor does any config: a script can build and validate every config without torch
    code = (
        "import embedtune, sys; "
        "[getattr(embedtune, n) for n in embedtune.__all__ if n.endswith('Config')]; "
        "embedtune.Registry; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in embedtune.__all__:
        value = getattr(embedtune, name)
        if callable(value) and not name[0].isupper():
            assert value.__doc__ and "Example" in value.__doc__, name
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        _ = embedtune.trian


def test_readme_python_example_runs(
    train_set: Path, train_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(train_set, data)
    shutil.copyfile(data / "qrels" / "train.tsv", data / "qrels" / "test.tsv")
    code = _readme_example()
    for line, value in (("data = ", data), ("base = ", train_model_dir)):
        code, count = re.subn(rf"^{line}.*$", f"{line}{str(value)!r}", code, flags=re.M)
        assert count == 1, line
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "runs/api/model/model.safetensors").is_file()
    assert (tmp_path / "runs/api/eval/report.json").is_file()
    assert len(list((tmp_path / "runs/api/registry/versions").iterdir())) == 1
