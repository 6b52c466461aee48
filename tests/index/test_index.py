"""Vector index: LanceDB and Qdrant (local mode), identity checks, atomic switch, ANN recall."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.errors import ConfigError
from embedtune.index import Index, IndexConfig, SearchHit, build_index, search_index
from embedtune.index.index import open_store
from embedtune.index.store import VectorStore
from embedtune.registry import Registry
from tests.conftest import SHARED_DATA

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, train_model_dir: Path
) -> tuple[Registry, str]:
    from embedtune.export import ExportConfig, export_model

    root = tmp_path_factory.mktemp("reg")
    reg = Registry(root / "registry")
    vid = reg.add(train_model_dir).id
    export_model(
        ExportConfig(
            model=str(train_model_dir), output=root / "export", formats=["onnx"], parity_texts=8
        )
    )
    reg.add_export(root / "export")
    return reg, vid


def _exact_top(
    reg: Registry, vid: str, data: Path, queries: dict[str, str]
) -> dict[str, list[str]]:
    from embedtune.corpus.config import PassageConfig
    from embedtune.corpus.load import load_beir
    from embedtune.corpus.passages import split_passages
    from embedtune.models import load_model, resolve_model
    from embedtune.retrieval.dense import DenseEncoder, dense_search

    ref = resolve_model(str(reg.model_path(vid)))
    model = load_model(ref)
    docs = list(load_beir(data, "train").corpus.values())
    passages = split_passages(docs, model.tokenizer, PassageConfig())
    run = dense_search(
        DenseEncoder(model, ref),
        queries,
        [d.id for d in docs],
        passages.texts,
        passages.bounds,
        k=10,
    )
    return {q: sorted(run[q], key=lambda d: (-run[q][d], d)) for q in queries}


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_both_backends_find_what_exact_search_finds(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path, backend: str
) -> None:
    reg, vid = registry
    config = IndexConfig(backend=backend, path=str(tmp_path / "idx"))  # type: ignore[arg-type]
    index = Index(config, reg)
    built = index.build(train_set, "train", vid)
    assert built.documents == 60 and built.identity.version == vid
    assert built.rows == built.passages and built.previous is None
    assert built.identity.encoder == "torch" and built.identity.export is None
    assert built.identity.pooling == "mean" and built.identity.normalize
    queries = {"q3": "topic3 number 3", "q17": "topic17 number 17", "q40": "alpha beta"}
    exact = _exact_top(reg, vid, train_set, queries)
    for qid, text in queries.items():
        hits = index.search(text, k=10)
        assert all(isinstance(h, SearchHit) for h in hits)
        assert [h.doc_id for h in hits] == exact[qid]
        assert len({h.doc_id for h in hits}) == 10  # distinct documents
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # the identity stored with the table is the one the build reports
    current = index.store.current("passages")
    assert current is not None and current[1] == built.identity.model_dump()


def test_rebuild_switches_atomically_and_other_models_are_refused(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path
) -> None:
    reg, vid = registry
    config = IndexConfig(path=str(tmp_path / "idx"))
    first = build_index(train_set, "train", vid, reg, config)
    second = build_index(train_set, "train", vid, reg, config)
    assert second.previous == first.table and second.table != first.table
    assert open_store(config).current("passages")[0] == second.table  # type: ignore[index]
    with pytest.raises(ConfigError, match="is refused"):
        search_index("topic3", reg, config, encoder="fp32")
    onnx = IndexConfig(path=str(tmp_path / "onnx"), encoder="fp32")
    built = build_index(train_set, "train", vid, reg, onnx)
    assert built.identity.export == reg.show(vid).exports[0].id
    exact = _exact_top(reg, vid, train_set, {"q": "topic3 number 3"})["q"]
    assert [h.doc_id for h in search_index("topic3 number 3", reg, onnx, k=3)] == exact[:3]
    with pytest.raises(ConfigError, match="is refused"):
        search_index("topic3", reg, onnx, encoder="torch")
    with pytest.raises(ConfigError, match="no index 'other'"):
        search_index("x", reg, IndexConfig(path=str(tmp_path / "idx"), name="other"))


def test_index_and_search_cli(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path
) -> None:
    reg, vid = registry
    common = ["--index", str(tmp_path / "idx"), "--registry", str(reg.root)]
    built = runner.invoke(
        app, ["index", str(train_set), "--split", "train", "--version", vid, *common]
    )
    assert built.exit_code == 0, built.output
    assert "passages of 60 documents" in built.output and "replaced" not in built.output
    found = runner.invoke(app, ["search", "topic3 number 3", "-k", "3", *common])
    assert found.exit_code == 0, found.output
    exact = _exact_top(reg, vid, train_set, {"q": "topic3 number 3"})["q"]
    first = re.search(r"\b1\s+[0-9.]+\s+(\S+)\s+\(passage", found.output)
    assert first is not None and first.group(1) == exact[0]
    missing = runner.invoke(app, ["index", str(train_set), "--version", "nope", *common])
    assert missing.exit_code == 2 and "no version or tag 'nope'" in missing.output


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "finance10k").is_dir(), reason="needs ../shared/data")
def test_ann_index_on_finance10k_matches_exact_search(tmp_path: Path) -> None:
    """IVF-PQ (not a flat scan) over real passages (the first 80 finance10k/test documents,
    past an `ann_min_rows` of 512 that switches LanceDB to IVF-PQ, at a fifth of the encoding
    of all 395): the top-10 documents of the index match exact max-passage search over the
    same vectors (recall@10 ≥ 0.99)."""
    import shutil

    from embedtune.corpus.load import load_beir
    from embedtune.models import resolve_model

    source = SHARED_DATA / "finance10k" / "test"
    data = tmp_path / "fin"
    (data / "qrels").mkdir(parents=True)
    lines = (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "corpus.jsonl").write_text("".join(lines[:80]), encoding="utf-8")
    shutil.copy(source / "queries.jsonl", data / "queries.jsonl")
    kept = {json.loads(line)["_id"] for line in lines[:80]}
    judged = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    (data / "qrels" / "test.tsv").write_text(
        "\n".join([judged[0], *(j for j in judged[1:] if j.split("\t")[1] in kept)]) + "\n"
    )
    reg = Registry(tmp_path / "registry")
    vid = reg.add(resolve_model("base").path).id
    config = IndexConfig(path=str(tmp_path / "idx"), chunk=8192, ann_min_rows=512)
    built = build_index(data, "test", vid, reg, config)
    assert built.index == "IVF-PQ" and built.rows > config.ann_min_rows
    store = open_store(config)
    table = store.db.open_table(built.table).to_arrow()  # type: ignore[attr-defined]
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    doc_of = np.array(table.column("doc_id").to_pylist())
    queries = load_beir(data, "test").judged_queries()
    sample = dict(list(queries.items())[:200])
    from embedtune.index.index import load_encoder

    model, _ = load_encoder(reg, vid, "torch")
    q = np.asarray(model.encode(list(sample.values())), dtype=np.float32)
    index = Index(config, reg)  # one object: the query encoder is loaded once
    recall = []
    for row, text in enumerate(sample.values()):
        scores = vectors @ q[row]
        best: dict[str, float] = {}
        for doc, s in zip(doc_of, scores, strict=True):
            best[doc] = max(best.get(doc, -1.0), float(s))
        exact = sorted(best, key=lambda d: (-best[d], d))[:10]
        hits = [h.doc_id for h in index.search(text, k=10)]
        recall.append(len(set(hits) & set(exact)) / 10)
    assert np.mean(recall) >= 0.99, np.mean(recall)


def _tables(store: VectorStore | IndexConfig) -> set[str]:
    """The tables of index ``passages`` (a store: Qdrant's local mode allows one per folder)."""
    store = open_store(store) if isinstance(store, IndexConfig) else store
    return {t for t in store.tables() if t.startswith("passages-")}


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_rebuilds_keep_the_last_n_tables_and_never_the_current_one(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path, backend: str
) -> None:
    reg, vid = registry
    config = IndexConfig(backend=backend, path=str(tmp_path / "idx"))  # type: ignore[arg-type]
    index = Index(config, reg)
    other = index.store  # one client per folder (Qdrant's local mode)
    first, second = index.build(train_set, "train", vid), index.build(train_set, "train", vid)
    assert second.dropped == [] and _tables(other) == {first.table, second.table}
    third = index.build(train_set, "train", vid)  # keep 2: the new table and the one replaced
    assert third.previous == second.table and third.dropped == [first.table]
    assert _tables(other) == {second.table, third.table}
    assert other.target("passages") == third.table
    assert [h.doc_id for h in index.search("topic3 number 3", k=3)]  # still searchable
    # keep 1: only the new table; keep 0: nothing is dropped
    index.config = config.model_copy(update={"keep": 1})
    fourth = index.build(train_set, "train", vid)
    assert sorted(fourth.dropped) == sorted([second.table, third.table])
    index.config = config.model_copy(update={"keep": 0})
    fifth = index.build(train_set, "train", vid)
    assert fifth.dropped == [] and fifth.previous == fourth.table
    assert _tables(other) == {fourth.table, fifth.table}


def test_retention_leaves_other_indexes_and_foreign_tables_alone(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path
) -> None:
    import pyarrow as pa

    reg, vid = registry
    path = str(tmp_path / "idx")
    other = build_index(train_set, "train", vid, reg, IndexConfig(path=path, name="passages-x"))
    store = open_store(IndexConfig(path=path))
    store.db.create_table(  # type: ignore[attr-defined]
        "passages-mine", schema=pa.schema([pa.field("a", pa.int32())]), mode="create"
    )
    config = IndexConfig(path=path, keep=1)
    for _ in range(3):
        build_index(train_set, "train", vid, reg, config)
    names = set(open_store(config).tables())
    assert other.table in names and "passages-mine" in names
    assert len([t for t in names if re.fullmatch(r"passages-[0-9a-f]{8}-torch-\w{8}", t)]) == 1


def test_tables_of_an_older_embedtune_go_only_once_keep_is_filled(
    registry: tuple[Registry, str], train_set: Path, tmp_path: Path
) -> None:
    """Tables built before build records existed have no order: never taken for an
    interrupted build's, dropped once the recorded chain alone fills ``keep``."""
    import pyarrow as pa

    reg, vid = registry
    config = IndexConfig(path=str(tmp_path / "idx"), keep=3)
    store = open_store(config)
    legacy = [f"passages-{vid[:8]}-torch-0000000{i}" for i in range(2)]
    for table in legacy:  # what an older embedtune wrote: the identity only
        schema = pa.schema(
            [pa.field("vector", pa.list_(pa.float32(), 8))],
            metadata={"identity": json.dumps({"version": vid})},
        )
        store.db.create_table(table, schema=schema, mode="create")  # type: ignore[attr-defined]
        assert store.build_record(table) is None
    store.switch("passages", legacy[1])
    built = build_index(train_set, "train", vid, reg, config)
    assert built.previous == legacy[1] and built.dropped == []  # chain: new, legacy[1]
    again = build_index(train_set, "train", vid, reg, config)
    assert sorted(again.dropped) == [legacy[0]]  # chain of 3 fills keep 3
    assert _tables(config) == {legacy[1], built.table, again.table}


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_a_failed_build_drops_its_table_and_a_killed_ones_is_removed_next_time(
    registry: tuple[Registry, str],
    train_set: Path,
    tmp_path: Path,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg, vid = registry
    config = IndexConfig(backend=backend, path=str(tmp_path / "idx"))  # type: ignore[arg-type]
    index = Index(config, reg)
    first = index.build(train_set, "train", vid)
    store = index.store

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:  # an exception while writing: the table goes
        patch.setattr(store, "add", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            index.build(train_set, "train", vid)
    assert _tables(store) == {first.table}

    def killed(*args: object) -> None:
        raise SystemExit(137)

    with monkeypatch.context() as patch:  # killed between writing and switching
        patch.setattr("embedtune.index.index._drop_quietly", lambda *a: None)
        patch.setattr(store, "switch", killed)
        with pytest.raises(SystemExit):
            index.build(train_set, "train", vid)
    (left,) = _tables(store) - {first.table}
    assert store.target("passages") == first.table
    caplog.set_level(logging.INFO, logger="embedtune")
    again = index.build(train_set, "train", vid)
    lines = [r.getMessage() for r in caplog.records if "interrupted build" in r.getMessage()]
    assert len(lines) == 1 and left in lines[0]
    assert left in again.dropped and _tables(store) == {first.table, again.table}
    assert again.previous == first.table


def test_build_shows_one_progress_bar_and_one_info_line(
    registry: tuple[Registry, str],
    train_set: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from embedtune import console

    bars: list[tuple[str, object, list[int]]] = []

    def recording(*args: object, **kwargs: object) -> object:
        bar = console.progress(*args, **kwargs)  # type: ignore[arg-type]
        steps: list[int] = []
        update = bar.update
        bar.update = lambda n=1: (steps.append(n), update(n))[1]
        bars.append((str(kwargs["desc"]), kwargs.get("total"), steps))
        return bar

    monkeypatch.setattr("embedtune.index.index.progress", recording)
    caplog.set_level(logging.INFO, logger="embedtune")
    reg, vid = registry
    config = IndexConfig(path=str(tmp_path / "idx"), chunk=50)
    built = build_index(train_set, "train", vid, reg, config)
    assert len(bars) == 1
    desc, total, steps = bars[0]
    assert desc == "index" and total == built.passages == sum(steps) and len(steps) > 1
    ours = [r for r in caplog.records if r.name.startswith("embedtune.index")]
    assert len(ours) == 1 and ours[0].levelno == logging.INFO
    assert f"passages of {built.documents} documents" in ours[0].getMessage()


def test_index_cli_keep(registry: tuple[Registry, str], train_set: Path, tmp_path: Path) -> None:
    reg, vid = registry
    args = ["index", str(train_set), "--split", "train", "--version", vid]
    args += ["--index", str(tmp_path / "idx"), "--registry", str(reg.root), "--keep", "1"]
    assert runner.invoke(app, args).exit_code == 0
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "dropped 1 old table(s)" in second.output
    assert len(_tables(IndexConfig(path=str(tmp_path / "idx")))) == 1
    bad = runner.invoke(app, [*args[:-1], "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
