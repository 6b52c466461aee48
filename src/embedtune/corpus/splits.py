"""The dev-split rule, in one place: which queries tune and select a model, never the test.

Training reads a dev split in this order: the split the user names; else a split called
``dev`` beside the training split; else a share of the training queries held out by
:func:`hold_out_dev`. The pairs stage applies the rule; governance scans what it will read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from embedtune.corpus.load import beir_splits
from embedtune.corpus.types import Qrels
from embedtune.errors import DataError


def dev_split_for(data: str | Path, split: str, dev_split: str | None) -> str | None:
    """The dev split to read (given, or ``dev`` when the data has one), or None: hold out."""
    if dev_split is not None:
        return dev_split
    return "dev" if split != "dev" and "dev" in beir_splits(Path(data)) else None


def training_splits(data: str | Path, split: str, dev_split: str | None) -> list[str]:
    """Every split training reads: its own, and the dev split if there is one."""
    dev = dev_split_for(data, split, dev_split)
    return [split] if dev is None else [split, dev]


def hold_out_dev(qrels: Qrels, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split judged queries into (train, dev), grouped by relevant document.

    Queries that share a relevant document land on the same side, so a dev query never has
    its answer passage trained on through a sibling query. The grouping is connected
    components of the query–document graph; groups are ordered by a seeded hash and taken
    until ``fraction`` of the queries are in dev.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    judged = sorted(q for q, docs in qrels.items() if any(s >= 1 for s in docs.values()))
    for qid in judged:
        for doc, score in qrels[qid].items():
            if score >= 1:
                parent[find(f"q:{qid}")] = find(f"d:{doc}")
    groups: dict[str, list[str]] = {}
    for qid in judged:
        groups.setdefault(find(f"q:{qid}"), []).append(qid)
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    target = max(1, round(fraction * len(judged)))
    dev: list[str] = []
    for group in order:
        if len(dev) >= target:
            break
        if len(dev) + len(groups[group]) > 2 * target:
            continue  # one huge group (a shared FAQ answer) must not swallow the train set
        dev.extend(groups[group])
    dev_set = set(dev)
    train = [q for q in judged if q not in dev_set]
    if not train or not dev:
        raise DataError(
            f"cannot hold out a dev set from {len(judged)} judged queries: queries sharing a "
            "relevant document stay together, and here they would leave "
            f"{len(train)} to train on; give a dev split (--dev-split) or more queries"
        )
    return train, sorted(dev_set)
