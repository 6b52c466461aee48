"""Shared fixtures: offline mode, tiny models built in code, small BEIR folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from embedtune.testing import build_tiny_model

# An accidental download must fail loudly.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # one torch thread per test worker (and the processes its tests start): the workers
    # share the cores, and two threads each would only contend
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

DOCS = [
    {"_id": "d1", "title": "Revenue", "text": "Total revenue grew because ride volume increased."},
    {"_id": "d2", "title": "Risk", "text": "Insurance reserves may be insufficient for claims."},
    {"_id": "d3", "title": "", "text": "The company leases office space in San Francisco."},
    {"_id": "d4", "title": "Drivers", "text": "Drivers are classified as independent contractors."},
    {"_id": "d5", "title": "Debt", "text": "Convertible senior notes are due in 2025."},
    {"_id": "d6", "title": "Revenue", "text": "Total revenue grew because ride volume increased."},
]
QUERIES = [
    {"_id": "q1", "text": "why did revenue grow"},
    {"_id": "q2", "text": "are insurance reserves enough for claims"},
    {"_id": "q3", "text": "where is office space leased"},
    {"_id": "q4", "text": "how are drivers classified"},
    {"_id": "q5", "text": "unjudged query about nothing"},
]
QRELS = [
    ("q1", "d1", 2),
    ("q1", "d6", 1),
    ("q2", "d2", 1),
    ("q3", "d3", 1),
    ("q4", "d4", 1),
    ("q4", "d5", 0),
]


def write_beir(
    folder: Path,
    split: str = "test",
    docs: list[dict] | None = None,
    queries: list[dict] | None = None,
    qrels: list[tuple] | None = None,
) -> Path:
    """Write a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = DOCS if docs is None else docs
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows))
    qrows = QUERIES if queries is None else queries
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qrows))
    (folder / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{q}\t{d}\t{s}" for q, d, s in (QRELS if qrels is None else qrels)
    ]
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [f"{d['title']} {d['text']}" for d in DOCS] + [q["text"] for q in QUERIES]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), texts)


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDTUNE_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_train_set(folder: Path, n: int = 60, split: str = "train") -> Path:
    """A labeled set where query i asks about document i (a few long, multi-passage ones)."""
    docs = [
        {
            "_id": f"d{i}",
            "title": f"topic{i}",
            "text": f"topic{i} alpha beta gamma delta number {i} " * (8 if i % 5 == 0 else 2),
        }
        for i in range(n)
    ]
    queries = [{"_id": f"q{i}", "text": f"topic{i} number {i}"} for i in range(n)]
    qrels = [(f"q{i}", f"d{i}", 1) for i in range(n)]
    return write_beir(folder, split, docs=docs, queries=queries, qrels=qrels)


@pytest.fixture(scope="session")
def train_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_train_set(tmp_path_factory.mktemp("trainset") / "data")


@pytest.fixture(scope="session")
def train_model_dir(tmp_path_factory: pytest.TempPathFactory, train_set: Path) -> Path:
    """A tiny model whose vocabulary covers the training set."""
    texts = [line for line in (train_set / "corpus.jsonl").read_text().splitlines()]
    texts += (train_set / "queries.jsonl").read_text().splitlines()
    return build_tiny_model(tmp_path_factory.mktemp("trainmodel"), texts)
