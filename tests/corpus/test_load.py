"""Loading BEIR folders, JSONL/CSV files and folders of documents; every bad-input path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedtune.corpus import CorpusConfig, Fields, load_beir, load_dataset
from embedtune.errors import DataError
from tests.conftest import write_beir


def test_beir_folder_loads_corpus_queries_and_split(beir_dir: Path) -> None:
    data = load_beir(beir_dir, "test")
    assert list(data.corpus)[:2] == ["d1", "d2"]
    assert data.corpus["d3"].full_text == "The company leases office space in San Francisco."
    assert data.qrels["q1"] == {"d1": 2, "d6": 1}
    assert set(data.judged_queries()) == {"q1", "q2", "q3", "q4"}
    assert data.manifest.counts["unjudged_queries"] == 1
    assert len(data.manifest.files) == 3
    assert all(len(h) == 64 for h in data.manifest.files.values())


def test_split_held_in_its_own_folder(tmp_path: Path) -> None:
    write_beir(tmp_path / "set" / "train", "train")
    write_beir(
        tmp_path / "set" / "test",
        "test",
        docs=[{"_id": "d9", "text": "x y"}],
        queries=[{"_id": "q9", "text": "x"}],
        qrels=[("q9", "d9", 1)],
    )
    assert list(load_beir(tmp_path / "set", "test").corpus) == ["d9"]
    assert "d1" in load_beir(tmp_path / "set", "train").corpus


def test_missing_split_names_the_available_ones(beir_dir: Path) -> None:
    with pytest.raises(DataError, match=r"split 'dev' not found.*available splits: test"):
        load_beir(beir_dir, "dev")


def test_exact_duplicates_are_reported_not_dropped(beir_dir: Path) -> None:
    data = load_beir(beir_dir, "test")
    assert data.manifest.duplicates["documents"] == 1
    assert data.manifest.duplicates["examples"] == [["d1", "d6"]]
    assert "d6" in data.corpus


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"_id": "d7", "text": "ok"', r"corpus.jsonl:7: malformed JSON"),
        ('["d7", "text"]', r"corpus.jsonl:7: expected a JSON object"),
        ('{"text": "no id here"}', r"corpus.jsonl:7: missing field \(field '_id'\)"),
        (
            '{"_id": "d2", "text": "again"}',
            r"corpus.jsonl:7: duplicate document id 'd2' \(first "
            r"at line 2\)",
        ),
        ('{"_id": "d7", "title": " ", "text": ""}', r"corpus.jsonl:7: document 'd7' has empty"),
        ('{"_id": "d7", "text": ["a"]}', r"corpus.jsonl:7: expected a string.*field 'text'"),
    ],
)
def test_bad_corpus_lines_name_file_and_line(beir_dir: Path, line: str, message: str) -> None:
    with open(beir_dir / "corpus.jsonl", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(DataError, match=message):
        load_beir(beir_dir, "test")


def test_non_utf8_bytes_name_the_line(beir_dir: Path) -> None:
    with open(beir_dir / "corpus.jsonl", "ab") as handle:
        handle.write(b'{"_id": "d7", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"corpus.jsonl:7: not valid UTF-8.*re-encode"):
        load_beir(beir_dir, "test")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("qX\td1\t1", r"test.tsv:8: qrels name unknown query 'qX'"),
        ("q1\tdX\t1", r"test.tsv:8: qrels name unknown document 'dX'"),
        ("q1\td2\thigh", r"test.tsv:8: score 'high' is not a number"),
        ("q1\td2", r"test.tsv:8: expected 3 columns"),
    ],
)
def test_bad_qrels_rows(beir_dir: Path, row: str, message: str) -> None:
    with open(beir_dir / "qrels" / "test.tsv", "a") as handle:
        handle.write(row + "\n")
    with pytest.raises(DataError, match=message):
        load_beir(beir_dir, "test")


def test_bad_queries(beir_dir: Path) -> None:
    with open(beir_dir / "queries.jsonl", "a") as handle:
        handle.write('{"_id": "q1", "text": "dup"}\n')
    with pytest.raises(DataError, match=r"queries.jsonl:6: duplicate query id 'q1'"):
        load_beir(beir_dir, "test")


def test_empty_query_text(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d", queries=[{"_id": "q1", "text": "  "}], qrels=[])
    with pytest.raises(DataError, match=r"queries.jsonl:1: query 'q1' has empty text"):
        load_beir(folder, "test")


def test_empty_corpus(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d", docs=[], queries=[], qrels=[])
    with pytest.raises(DataError, match=r"corpus.jsonl: the corpus is empty"):
        load_beir(folder, "test")


def test_skip_bad_counts_every_skipped_record(beir_dir: Path) -> None:
    with open(beir_dir / "corpus.jsonl", "a") as handle:
        handle.write('{"_id": "d7"\n{"_id": "d2", "text": "dup"}\n{"_id": "d8", "text": ""}\n')
    with open(beir_dir / "qrels" / "test.tsv", "a") as handle:
        handle.write("qX\td1\t1\nq1\td8\t1\n")
    data = load_beir(beir_dir, "test", skip_bad=True)
    assert dict(data.manifest.skipped) == {
        "malformed_json": 1,
        "duplicate_id": 1,
        "empty_text": 1,
        "qrels_unknown_query": 1,
        "qrels_unknown_document": 1,
    }
    assert len(data.corpus) == 6


def test_jsonl_and_csv_with_custom_field_names(tmp_path: Path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"doc": 1, "heading": "H", "body": "text one"}) + "\n")
    csv = tmp_path / "docs.csv"
    csv.write_text('doc,heading,body\n1,H,"text, with comma\nand newline"\n2,,two\n')
    fields = Fields(id="doc", title="heading", text="body")
    from_jsonl = load_dataset(CorpusConfig(path=str(jsonl), fields=fields))
    from_csv = load_dataset(CorpusConfig(path=str(csv), fields=fields))
    assert from_jsonl.corpus["1"].title == "H"
    assert from_csv.corpus["1"].text == "text, with comma\nand newline"
    assert from_csv.corpus["2"].full_text == "two"


def test_csv_wrong_column_count_names_line(tmp_path: Path) -> None:
    csv = tmp_path / "docs.csv"
    csv.write_text("_id,text\n1,ok\n2,too,many\n")
    with pytest.raises(DataError, match=r"docs.csv:3: expected 2 columns"):
        load_dataset(CorpusConfig(path=str(csv)))


def test_folder_of_text_markdown_and_html(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    (root / "sub").mkdir(parents=True)
    (root / "plain_notes.txt").write_text("Just text.\n")
    (root / "sub" / "guide.md").write_text("intro line\n\n## Install Guide\n\nRun make.\n")
    (root / "page.html").write_text(
        "<html><head><title>Tab</title><style>p{}</style></head>"
        "<body><h1>Pricing</h1><p>Costs <b>five</b> dollars.</p></body></html>"
    )
    (root / "ignored.bin").write_bytes(b"\x00\x01")
    data = load_dataset(CorpusConfig(path=str(root)))
    assert sorted(data.corpus) == ["page.html", "plain_notes.txt", "sub/guide.md"]
    assert data.corpus["plain_notes.txt"].title == "plain notes"
    assert data.corpus["sub/guide.md"].title == "Install Guide"
    assert data.corpus["sub/guide.md"].text == "intro line\n\n\nRun make."
    assert data.corpus["page.html"].title == "Pricing"
    assert "Costs" in data.corpus["page.html"].text and "p{}" not in data.corpus["page.html"].text


def test_folder_non_utf8_and_empty(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "a.txt").write_bytes(b"line one\nline \xff two\n")
    with pytest.raises(DataError, match=r"a.txt:2: not valid UTF-8"):
        load_dataset(CorpusConfig(path=str(root), format="folder"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"the corpus is empty"):
        load_dataset(CorpusConfig(path=str(empty), format="folder"))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: no such file or folder"):
        load_dataset(CorpusConfig(path=str(tmp_path / "nope")))


def test_csv_long_fields_and_malformed_quotes(tmp_path: Path) -> None:
    long_text = "word " * 40_000  # 200 KB: over the csv module's default field limit
    csv = tmp_path / "docs.csv"
    csv.write_text(f'_id,text\n1,"{long_text}"\n2,short\n')
    assert len(load_dataset(CorpusConfig(path=str(csv))).corpus["1"].text) == len(long_text)
    bad = tmp_path / "bad.tsv"
    bad.write_text("_id\ttext\n1\tok\n2\ttoo\tmany\n3\tfine\n")
    with pytest.raises(DataError, match=r"bad.tsv:3: expected 2 columns"):
        load_dataset(CorpusConfig(path=str(bad)))
    skipped = load_dataset(CorpusConfig(path=str(bad), skip_bad=True))
    assert sorted(skipped.corpus) == ["1", "3"]
    assert skipped.manifest.skipped["wrong_column_count"] == 1


def test_ids_with_whitespace(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d", docs=[{"_id": "a b", "text": "x"}], queries=[], qrels=[])
    with pytest.raises(DataError, match=r"corpus.jsonl:1: empty id or id with whitespace"):
        load_beir(folder, "test")
    root = tmp_path / "kb"
    root.mkdir()
    (root / "Annual Report.md").write_text("# Annual\n\ntext\n")
    assert list(load_dataset(CorpusConfig(path=str(root))).corpus) == ["Annual%20Report.md"]
