"""The embedded default dataset built from standard-library source."""

from __future__ import annotations

import json
from pathlib import Path

from embedtune.corpus import load_beir
from embedtune.corpus.stdlib import build_stdlib_dataset, collect_functions

SOURCE = '''
def add(a, b):
    """Add two numbers together.

    Works for ints and floats.
    """
    return a + b


def example():
    """>>> example() is a doctest summary"""


def ambiguous_one():
    """Return the same summary twice."""


class Box:
    def ambiguous_two(self):
        """Return the same summary twice."""

    @property
    def size(self):
        """Size of the box in litres."""
        return 3
'''


def test_collect_cleans_and_strips_the_summary(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(SOURCE)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test_x.py").write_text(SOURCE)  # test suites are excluded
    (tmp_path / "broken.py").write_text("def f(:\n")
    functions, skipped = collect_functions(tmp_path)
    by_name = {fn.qualname: fn for fn in functions}
    assert set(by_name) == {"add", "Box.size"}
    assert by_name["add"].summary == "Add two numbers together."
    assert "Add two numbers" not in by_name["add"].body
    assert "Works for ints and floats." in by_name["add"].body
    assert by_name["Box.size"].body.startswith("@property\ndef size(self):")
    assert by_name["add"].id == "pkg.add"
    assert skipped["doctest_summary"] == 1
    assert skipped["duplicate_summary"] == 2
    assert skipped["unparsable_file"] == 1


def test_build_splits_by_package_and_records_provenance(tmp_path: Path) -> None:
    manifest = build_stdlib_dataset(tmp_path, test_queries=30, test_docs=60, train_queries=50)
    train = load_beir(tmp_path, "train")
    test = load_beir(tmp_path, "test")
    assert len(test.judged_queries()) == 30 and len(test.corpus) == 60
    assert len(train.judged_queries()) == 50
    top = {doc_id.split(".")[0] for doc_id in test.corpus}
    assert not top & {doc_id.split(".")[0] for doc_id in train.corpus}
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["python"] == manifest["python"] and len(saved["dataset_sha256"]) == 64
    again = build_stdlib_dataset(
        tmp_path / "again", test_queries=30, test_docs=60, train_queries=50
    )
    assert again["dataset_sha256"] == manifest["dataset_sha256"]
    assert (tmp_path / "test" / "corpus.jsonl").read_text() == (
        tmp_path / "again" / "test" / "corpus.jsonl"
    ).read_text()
