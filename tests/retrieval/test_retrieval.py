"""BM25, chunked dense search with its cache, and fusion."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from embedtune.models import load_model, resolve_model
from embedtune.retrieval.bm25 import BM25Index
from embedtune.retrieval.dense import DenseEncoder, dense_search
from embedtune.retrieval.fusion import choose_weight, rrf, weighted
from embedtune.retrieval.metrics import ranked
from embedtune.retrieval.ranking import tie_keys, top_k


def test_top_k_breaks_ties_by_descending_id_even_at_the_cut() -> None:
    ids = ["a", "b", "c", "d", "e"]
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    picked = top_k(scores, tie_keys(ids), 3)
    assert [ids[i] for i in picked] == ["b", "d", "c"]


def test_bm25_matches_bm25s_reference_scores() -> None:
    import bm25s
    import Stemmer

    texts = [
        "the cat sat on the mat",
        "dogs chase cats",
        "a mat for a dog",
        "financial statements and revenue",
        "cats and dogs and mats",
    ]
    ids = [f"d{i}" for i in range(len(texts))]
    ours = BM25Index(ids, texts).search({"q": "cat mats"}, k=10)["q"]
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    q_tokens = bm25s.tokenize(
        ["cat mats"], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
    )[0]
    expected = reference.get_scores(q_tokens)
    assert ours == pytest.approx({ids[i]: float(s) for i, s in enumerate(expected) if s > 0})
    assert ranked(ours)[0] == "d4"


def test_bm25_query_with_no_known_term_retrieves_nothing() -> None:
    index = BM25Index(["a"], ["alpha beta"])
    assert index.search({"q": "zzz the"}) == {"q": {}}


@pytest.fixture
def encoder(tiny_model: Path, tmp_path: Path) -> DenseEncoder:
    ref = resolve_model(str(tiny_model))
    return DenseEncoder(load_model(ref, device="cpu"), ref, cache_dir=tmp_path / "cache")


def test_chunked_maxp_search_equals_brute_force(encoder: DenseEncoder) -> None:
    rng = np.random.default_rng(0)
    words = ["revenue", "grew", "drivers", "insurance", "office", "notes", "claims", "ride"]
    passages = [" ".join(rng.choice(words, 5)) for _ in range(60)]
    bounds = np.array([0, 3, 4, 10, 11, 20, 30, 31, 45, 60])
    doc_ids = [f"doc{i}" for i in range(len(bounds) - 1)]
    queries = {"q1": "revenue grew", "q2": "insurance claims", "q3": "office notes"}
    qv = encoder.encode_queries(list(queries.values()))
    pv = encoder.encode_documents(passages)
    sims = qv @ pv.T
    for chunk in (1, 7, 1000):
        run = dense_search(encoder, queries, doc_ids, passages, bounds, k=4, chunk_passages=chunk)
        for row, qid in enumerate(queries):
            best = {
                doc_ids[d]: float(sims[row, bounds[d] : bounds[d + 1]].max())
                for d in range(len(doc_ids))
            }
            expected = ranked(best)[:4]
            assert ranked(run[qid]) == expected, chunk
            assert run[qid][expected[0]] == pytest.approx(best[expected[0]], abs=1e-6)


def test_document_embeddings_come_from_cache_the_second_time(encoder: DenseEncoder) -> None:
    texts = ["revenue grew", "drivers are contractors", "office space"]
    first = encoder.encode_documents(texts)
    assert encoder.stats.encoded == 3 and encoder.stats.cached == 0
    second = encoder.encode_documents(texts)
    assert encoder.stats.encoded == 3 and encoder.stats.cached == 3
    np.testing.assert_array_equal(first, second)
    encoder.doc_prompt = "passage: "  # another prompt is another cache entry
    encoder.encode_documents(texts)
    assert encoder.stats.encoded == 6


def test_the_cache_serves_each_passage_whichever_call_encoded_it(
    encoder: DenseEncoder, tiny_model: Path
) -> None:
    mining = ["revenue grew", "drivers are contractors", "office space", "net loss"]
    first = encoder.encode_documents(mining)
    # a dev pool that overlaps mining's passages in another order and grouping, with one
    # new passage given twice: only the new passage is encoded, once
    pool = ["office space", "insurance reserves", "revenue grew", "insurance reserves"]
    done: list[int] = []
    second = encoder.encode_documents(pool, advance=done.append)
    assert (encoder.stats.encoded, encoder.stats.cached) == (5, 3)  # a repeat is not encoded
    assert sum(done) == len(pool)  # a progress bar over the texts ends at its total
    np.testing.assert_array_equal(second[[0, 2]], first[[2, 0]])
    np.testing.assert_array_equal(second[1], second[3])
    fresh = dataclasses.replace(encoder, cache_dir=None).encode_documents(pool)
    np.testing.assert_allclose(second, fresh, atol=1e-5)
    # another process (a new encoder on the same folder) reads every segment written so far
    ref = resolve_model(str(tiny_model))
    other = DenseEncoder(load_model(ref, device="cpu"), ref, cache_dir=encoder.cache_dir)
    np.testing.assert_array_equal(other.encode_documents(pool + mining), np.vstack([second, first]))
    assert (other.stats.encoded, other.stats.cached) == (0, 8)


def test_a_damaged_cache_segment_is_a_miss_not_an_error(encoder: DenseEncoder) -> None:
    texts = ["revenue grew", "office space"]
    first = encoder.encode_documents(texts)
    assert encoder.cache_dir is not None
    (vectors,) = encoder.cache_dir.rglob("*.vectors.npy")
    vectors.write_bytes(b"not an array")  # e.g. a disk that filled up under another tool
    ref = encoder.ref
    again = DenseEncoder(encoder.model, ref, cache_dir=encoder.cache_dir)
    np.testing.assert_allclose(again.encode_documents(texts), first, atol=1e-6)
    assert (again.stats.encoded, again.stats.cached) == (2, 0)
    # the re-encoding replaced the damaged segment (a segment is named by its keys)
    (keys,) = encoder.cache_dir.rglob("*.keys.npy")
    np.testing.assert_allclose(np.load(vectors), first, atol=1e-6)
    # a segment cut short before its keys were written (vectors only) is not read
    keys.unlink()
    third = DenseEncoder(encoder.model, ref, cache_dir=encoder.cache_dir)
    third.encode_documents(texts)
    assert (third.stats.encoded, third.stats.cached) == (2, 0)


def test_rrf_and_weighted_fusion() -> None:
    dense = {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}
    sparse = {"q": {"c": 12.0, "a": 3.0}}
    fused = rrf([dense, sparse])["q"]
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert ranked(fused) == ["a", "c", "b"]
    assert weighted(dense, sparse, 1.0)["q"]["a"] == pytest.approx(1.0)
    assert ranked(weighted(dense, sparse, 0.0)["q"])[0] == "c"
    qrels = {"q": {"c": 1}}
    weight, curve = choose_weight(dense, sparse, qrels, grid=[0.0, 0.75, 1.0])
    assert weight == 0.0 and set(curve) == {"0.00", "0.75", "1.00"}  # the unique maximum


def test_bm25_matches_query_words_by_stem_and_ignores_empty_documents() -> None:
    index = BM25Index(["a", "b", "c"], ["the cat runs fast", "dogs sleep", ""])
    assert ranked(index.search({"q": "running dog"})["q"]) == ["b", "a"]
    assert index.search({"q": "the and"}) == {"q": {}}


def test_a_dev_tie_never_gives_the_dense_model_weight_zero() -> None:
    # dense and BM25 agree on the one relevant document: every weight scores the same
    dense = {"q": {"a": 0.9, "b": 0.8}, "r": {"c": 0.7, "a": 0.2}}
    sparse = {"q": {"a": 5.0, "b": 1.0}, "r": {"c": 4.0, "b": 2.0}}
    qrels = {"q": {"a": 1}, "r": {"c": 1}}
    weight, curve = choose_weight(dense, sparse, qrels)
    assert len(set(curve.values())) == 1
    assert weight == 0.5  # the middle of the tied range, not 0 (BM25 alone)


def test_fusion_ties_go_to_the_middle_of_the_tied_weights_then_toward_dense() -> None:
    from embedtune.retrieval.fusion import _best_weight

    assert _best_weight({0.0: 0.8, 0.5: 0.7, 1.0: 0.6}) == 0.0  # a unique maximum stays
    assert _best_weight({0.0: 0.8, 0.25: 0.8, 0.5: 0.8, 0.75: 0.1}) == 0.25
    assert _best_weight({0.0: 0.8, 0.05: 0.8, 0.1: 0.2}) == 0.05  # equidistant: toward dense
    assert _best_weight({0.0: 0.8, 0.9: 0.8, 0.5: 0.1}) == 0.9
    assert _best_weight({0.1: 0.5, 0.2: 0.5 + 1e-12}) == 0.2  # only exact ties count


def test_mixed_precision_only_on_cuda_and_never_shares_the_cache(
    encoder: DenseEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import torch

    from embedtune.models import encode_batch_size, mixed_precision

    assert mixed_precision("cpu") is None and mixed_precision("mps") is None
    for supported, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert mixed_precision("cuda") == expected
        assert mixed_precision("cuda", "fp32") is None
    assert (encode_batch_size("cpu"), encode_batch_size("cuda"), encode_batch_size("cuda", 8)) == (
        64,
        256,
        8,
    )
    # vectors encoded in mixed precision (mining) are cached apart from full-precision ones
    # (reported evaluations): a full-precision evaluation never reads them
    mixed = dataclasses.replace(encoder, precision="fp16")
    assert mixed._settings_key() != encoder._settings_key()


def test_encoding_reports_progress_every_block_and_matches_one_call(encoder: DenseEncoder) -> None:
    texts = [f"topic{i % 9} number {i} " + "alpha " * (i % 7) for i in range(300)]
    encoder.batch_size = 4
    done: list[int] = []
    blocks = encoder.encode_documents(texts, advance=done.append)
    assert done == [256, 44]  # a long encoding is never silent for a whole chunk
    # from the cache: one step for the whole chunk
    cached: list[int] = []
    np.testing.assert_array_equal(encoder.encode_documents(texts, advance=cached.append), blocks)
    assert cached == [300]
    encoder.cache_dir = None  # in one call, as without a progress bar: the same vectors
    np.testing.assert_allclose(encoder.encode_documents(texts), blocks, atol=1e-5)
