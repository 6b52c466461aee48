"""Weak supervision: heuristic pairs, pseudo-queries filtered by base-model agreement, the
Inverse Cloze positive, the document-level dev hold-out, and the optional LLM writer."""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from embedtune import console
from embedtune.corpus.config import PassageConfig
from embedtune.corpus.passages import split_passages
from embedtune.corpus.types import Dataset, Document
from embedtune.errors import ConfigError, DataError
from embedtune.models import ModelRef, load_model, resolve_model
from embedtune.pairs._text import split_sentences
from embedtune.pairs.config import PairsConfig, WeakConfig
from embedtune.pairs.weak import WeakData, build_weak_supervision, hold_out_documents
from embedtune.retrieval.dense import DenseEncoder
from embedtune.testing import build_tiny_model

TOPICS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
TOPICS += ["theta", "iota", "kappa", "lambda", "omicron", "sigma"]
PASSAGES = PassageConfig(window=32, stride=16)


def topic_doc(i: int, topic: str) -> Document:
    text = (
        f"The {topic} program started in {2000 + i} across many regions. "
        f"Auditors reviewed {topic} controls and found material weaknesses in {topic} "
        f"reporting systems. Revenue from {topic} services grew because {topic} customers "
        f"renewed long contracts. The board approved new {topic} investments after careful "
        f"{topic} risk reviews. Management expects {topic} margins to recover next year "
        f"as {topic} costs decline."
    )
    return Document(f"d{i:02d}", f"{topic.title()} report", text)


CORPUS = {d.id: d for d in (topic_doc(i, t) for i, t in enumerate(TOPICS))}


class TopicModel:
    """A stand-in base model whose vector counts the topic words of a text. As a query
    (prompt "query: ") it reads each topic in ``confuse`` as another one: a model that
    mixes them up, so that BM25 and it disagree on purpose."""

    max_seq_length = 64

    def __init__(self, tokenizer: Any, confuse: dict[str, str] | None = None) -> None:
        self.tokenizer = tokenizer
        self.confuse = confuse or {}
        self.index = {t: i + 1 for i, t in enumerate(TOPICS)}

    def get_embedding_dimension(self) -> int:
        return len(self.index) + 1

    def encode(self, texts: list[str], prompt: str | None = None, **_: Any) -> np.ndarray:
        out = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, 0] = 0.1  # never a zero vector
            for word in re.findall(r"[a-z]+", text.lower()):
                if prompt == "query: ":
                    word = self.confuse.get(word, word)
                if word in self.index:
                    out[row, self.index[word]] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [d.full_text for d in CORPUS.values()]
    texts += ["What did the program report? Heading body text words here"]
    return build_tiny_model(tmp_path_factory.mktemp("weak-tiny"), texts)


@pytest.fixture(scope="session")
def tokenizer(tiny_dir: Path) -> Any:
    return load_model(resolve_model(str(tiny_dir)), device="cpu").tokenizer


def topic_encoder(tokenizer: Any, confuse: dict[str, str] | None = None) -> DenseEncoder:
    ref = ModelRef("topic-stub", "", "topic-stub-" + json.dumps(confuse or {}))
    model: Any = TopicModel(tokenizer, confuse)
    return DenseEncoder(model, ref, query_prompt="query: ", doc_prompt="passage: ")


def weak_config(**overrides: Any) -> WeakConfig:
    # a tiny corpus: a topic word is in one document only, every other word in all of them
    base: dict[str, Any] = {
        "min_df": 1,
        "max_df": 1.0,
        "agreement_k": len(CORPUS),
        "dev_fraction": 0.0,
    }
    return WeakConfig.model_validate({**base, **overrides})


PAIRS = PairsConfig.model_validate(
    {"negatives": {"ranks": [2, 12], "per_query": 1, "margin": -1.0}}
)


def build(
    encoder: DenseEncoder,
    corpus: dict[str, Document] | None = None,
    passages: PassageConfig = PASSAGES,
    **overrides: Any,
) -> WeakData:
    data = Dataset(corpus or CORPUS)
    return build_weak_supervision(data, encoder, passages, PAIRS, weak_config(**overrides))


def by_source(result: WeakData, source: str) -> list[Any]:
    return [p for p in result.pairs if p.provenance["source"] == source]


# --- heuristic pairs ------------------------------------------------------------------------


WING = (
    "wing flutter tests . the flutter of sigma wings was measured in a wind tunnel (fig. 3) "
    "by smith et al. at 0.5 mach . the results agree with the u.s. theory of thin sigma wings "
    "in steady flow !\nfurther tests are planned for next year"
)


def test_lower_cased_text_is_split_at_its_stops() -> None:
    assert [s.text for s in split_sentences(WING)] == [
        "wing flutter tests .",
        "the flutter of sigma wings was measured in a wind tunnel (fig. 3) by smith et al. at "
        "0.5 mach .",
        "the results agree with the u.s. theory of thin sigma wings in steady flow !",
        "further tests are planned for next year",
    ]
    # cased text keeps needing a capital after the stop
    assert len(split_sentences("Revenue grew. the U.S. market fell.")) == 1


def test_title_and_heading_pairs(tokenizer: Any) -> None:
    corpus = dict(CORPUS)
    corpus["t1"] = Document("t1", "Sigma", "Sigma programs are discussed below in detail here.")
    corpus["t2"] = Document(
        "t2",
        "",
        "# Beta outlook\nAuditors reviewed beta controls and found weaknesses.\n"
        "## Empty\n\n## Gamma risks\nRevenue from gamma services grew because customers renewed.",
    )
    corpus["t3"] = Document("t3", "wing flutter tests .", WING)
    result = build(topic_encoder(tokenizer), corpus, sources=["title"])
    pairs = by_source(result, "weak:title")
    titles = {p.provenance["doc_id"]: p for p in pairs if p.provenance["from"] == "title"}
    # every topic document has its own title; "Sigma" only repeats the start of t1's text
    assert set(titles) == {*CORPUS, "t3"}
    # t3's text repeats its title as a sentence of its own: the positive is what follows
    assert titles.pop("t3").positive.startswith("the flutter of sigma wings was measured")
    for doc_id, pair in titles.items():
        assert pair.query == CORPUS[doc_id].title
        assert CORPUS[doc_id].text.startswith(pair.positive)  # first window, no title prefix
        assert pair.query not in pair.positive
    headings = [(p.query, p.positive) for p in pairs if p.provenance["from"] == "heading"]
    assert headings == [
        ("Beta outlook", "Auditors reviewed beta controls and found weaknesses."),
        ("Gamma risks", "Revenue from gamma services grew because customers renewed."),
    ]


def test_adjacent_pairs_are_consecutive_and_disjoint(tokenizer: Any) -> None:
    small = PassageConfig(window=16, stride=8)
    result = build(topic_encoder(tokenizer), None, small, sources=["adjacent"])
    pairs = by_source(result, "weak:adjacent")
    plain = small.model_copy(update={"title": False, "stride": small.window})
    usable = 0
    for doc in CORPUS.values():
        texts = split_passages([doc], tokenizer, plain).texts
        starts = [doc.text.index(t) for t in texts]
        # the last window is aligned to the end of the text and may overlap the one before
        usable += min(
            2, sum(starts[i + 1] >= starts[i] + len(texts[i]) for i in range(len(texts) - 1))
        )
    assert len(pairs) == usable >= len(CORPUS)
    for pair in pairs:
        doc = CORPUS[pair.provenance["doc_id"]]
        texts = split_passages([doc], tokenizer, plain).texts
        i, j = pair.provenance["passages"]
        assert j == i + 1 and (pair.query, pair.positive) == (texts[i], texts[j])
        # neighbours, not copies: the positive continues the text where the query stops
        start = doc.text.index(pair.query)
        assert doc.text.index(pair.positive) >= start + len(pair.query)
        assert doc.title not in pair.query


def test_lead_pairs_drop_the_sentence(tokenizer: Any) -> None:
    corpus = {**CORPUS, "t3": Document("t3", "wing flutter tests .", WING)}
    result = build(topic_encoder(tokenizer), corpus, sources=["lead"])
    pairs = by_source(result, "weak:lead")
    assert len(pairs) == len(CORPUS) + 1
    # a title repeated at the start of the text is not the lead: the next sentence is
    wing = next(p for p in pairs if p.provenance["doc_id"] == "t3")
    assert wing.query.startswith("the flutter of sigma wings") and wing.query.endswith("mach .")
    assert wing.positive.startswith("wing flutter tests . the results agree")  # title prefix
    for pair in (p for p in pairs if p is not wing):
        doc = CORPUS[pair.provenance["doc_id"]]
        assert doc.text.startswith(pair.query) and pair.query.endswith("regions.")
        assert pair.query not in pair.positive
        assert pair.positive.startswith(f"{doc.title} Auditors reviewed")


# --- pseudo-queries -------------------------------------------------------------------------


def test_sentence_queries_get_inverse_cloze_positives(tokenizer: Any) -> None:
    result = build(topic_encoder(tokenizer), sources=["sentence"], max_queries_per_doc=2)
    pairs = by_source(result, "weak:sentence")
    assert len(pairs) == 2 * len(CORPUS)
    for pair in pairs:
        doc = CORPUS[pair.provenance["doc_id"]]
        assert pair.query in doc.text  # a real sentence of the labeled document
        assert pair.query not in pair.positive  # ... cut out of the positive
        assert pair.provenance["positive"]["inverse_cloze"] is True
        # the rest of the passage stays: put the sentence back and it is a real passage
        passages = split_passages([doc], tokenizer, PASSAGES).texts
        assert any(p.replace(pair.query, " ").split() == pair.positive.split() for p in passages)
        assert all(pair.query not in n for n in pair.negatives)


def test_keyphrase_queries_name_the_topic(tokenizer: Any) -> None:
    result = build(topic_encoder(tokenizer), sources=["keyphrase"], max_queries_per_doc=1)
    pairs = by_source(result, "weak:keyphrase")
    assert len(pairs) == len(CORPUS)
    for pair in pairs:
        topic = CORPUS[pair.provenance["doc_id"]].title.split()[0].lower()
        words = pair.query.split()
        assert topic in words and len(words) == len(set(words))
        assert pair.provenance["query_doc_id"] == pair.provenance["doc_id"]


def test_agreement_filter_drops_what_the_base_model_misses(tokenizer: Any) -> None:
    # as a query, the base model reads "alpha" as "beta": BM25 says d00, the model says d01
    confused = topic_encoder(tokenizer, {"alpha": "beta"})
    strict = build(confused, sources=["sentence", "keyphrase"], agreement_k=1)
    loose = build(confused, sources=["sentence", "keyphrase"])
    strict_queries = {(p.query, p.provenance["doc_id"]) for p in strict.pairs}
    loose_queries = {(p.query, p.provenance["doc_id"]) for p in loose.pairs}
    about_alpha = {q for q in loose_queries if q[1] == "d00"}
    assert len(about_alpha) >= 3  # two sentences and a key phrase, kept at k = 12
    assert strict_queries == loose_queries - about_alpha  # ... and only those dropped at k = 1
    dropped = strict.summary["pseudo_queries"]
    assert dropped["sentence"]["disagree"] == 2 and dropped["keyphrase"]["disagree"] >= 1
    assert "disagree" not in loose.summary["pseudo_queries"]["sentence"]


def test_agreement_search_shows_its_progress(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the base model reads the whole corpus here (minutes on a CPU): progress even from an
    # encoder made without it, as quiet mode's structured lines too
    monkeypatch.setattr(console, "_verbosity", "quiet")
    monkeypatch.setattr(console, "PROGRESS_LINE_SECONDS", 0.0)
    encoder = topic_encoder(tokenizer)
    assert not encoder.show_progress
    build(encoder, sources=["sentence"])
    lines = [x for x in capsys.readouterr().err.splitlines() if 'step="agreement search"' in x]
    assert lines and lines[-1].endswith("finished=true"), lines
    passages = len(split_passages(list(CORPUS.values()), tokenizer, PASSAGES).texts)
    assert f" done={passages} total={passages} " in lines[-1], lines
    assert encoder.stats.encoded > 0  # the search's encoding is counted on the caller's encoder


def test_every_query_filtered_is_an_error_naming_the_setting(tokenizer: Any) -> None:
    # each topic read as the next one: the model's top document is never BM25's
    shifted = {t: TOPICS[(i + 1) % len(TOPICS)] for i, t in enumerate(TOPICS)}
    with pytest.raises(DataError, match=r"raise weak\.agreement_k"):
        build(topic_encoder(tokenizer, shifted), sources=["sentence"], agreement_k=1)
    # the same queries pass when the base model may rank the document second
    assert build(topic_encoder(tokenizer, shifted), sources=["sentence"], agreement_k=2).pairs


# --- the dev hold-out -----------------------------------------------------------------------


def test_no_training_pair_touches_a_dev_document(tokenizer: Any) -> None:
    result = build(
        topic_encoder(tokenizer),
        None,
        PassageConfig(window=16, stride=8),  # several passages per document
        sources=["title", "adjacent", "lead", "sentence", "keyphrase"],
        dev_fraction=0.25,
        dev_seed=3,
    )
    dev_docs = hold_out_documents(list(CORPUS), 0.25, 3)
    assert len(dev_docs) == 3
    dev_texts = [CORPUS[d].text for d in dev_docs]
    assert {p.provenance["source"] for p in result.pairs} == {
        "weak:title",
        "weak:adjacent",
        "weak:lead",
        "weak:sentence",
        "weak:keyphrase",
    }
    assert any(p.negatives for p in result.pairs)
    for pair in result.pairs:
        prov = pair.provenance
        assert prov["doc_id"] not in dev_docs
        assert prov.get("query_doc_id", prov["doc_id"]) not in dev_docs
        assert all(n["doc_id"] not in dev_docs for n in prov.get("negatives", []))
        for text in [pair.positive, *pair.negatives]:
            body = text.split(" ", 2)[-1]  # without a "<Topic> report" title prefix
            assert not any(body in t for t in dev_texts)
    # the dev set: held-out documents' key-phrase and title queries over the full corpus
    assert result.dev.corpus is not None and len(result.dev.corpus) == len(CORPUS)
    assert result.dev_ids == list(result.dev.queries) and result.dev_ids
    kinds = {q.split(":")[1] for q in result.dev_ids}
    assert kinds == {"title", "keyphrase"}  # no verbatim sentences by default
    for qid, rels in result.dev.qrels.items():
        assert list(rels.values()) == [1] and set(rels) <= dev_docs
        assert qid.split(":")[2] in dev_docs
    assert result.summary["dev"]["queries"] == len(result.dev_ids)
    few = build(
        topic_encoder(tokenizer),
        None,
        PassageConfig(window=16, stride=8),
        dev_fraction=0.25,
        dev_seed=3,
        dev_max_queries=2,
    )
    assert len(few.dev_ids) == 2 and set(few.dev_ids) <= set(result.dev_ids)
    assert few.summary["dev"]["capped"] == len(result.dev_ids) - 2
    # dev queries do not depend on the training sources: the same held-out queries judge a
    # recipe trained on adjacent passages only
    adjacent = build(
        topic_encoder(tokenizer),
        None,
        PassageConfig(window=16, stride=8),
        sources=["adjacent"],
        dev_fraction=0.25,
        dev_seed=3,
    )
    assert {p.provenance["source"] for p in adjacent.pairs} == {"weak:adjacent"}
    assert adjacent.dev_ids == result.dev_ids


def test_dev_fraction_leaving_nothing_to_train_is_refused(tokenizer: Any) -> None:
    with pytest.raises(DataError, match=r"lower weak\.dev_fraction"):
        build(topic_encoder(tokenizer), corpus={"d00": CORPUS["d00"]}, dev_fraction=0.5)


def test_same_inputs_same_output_and_the_cap(tiny_dir: Path) -> None:
    ref = resolve_model(str(tiny_dir))
    encoder = DenseEncoder(load_model(ref, device="cpu"), ref)
    overrides = {"dev_fraction": 0.25, "agreement_k": 6}
    first = build(encoder, **overrides)
    second = build(dataclasses.replace(encoder), **overrides)
    assert [dataclasses.asdict(p) for p in first.pairs] == [
        dataclasses.asdict(p) for p in second.pairs
    ]
    assert (first.dev.queries, first.dev.qrels) == (second.dev.queries, second.dev.qrels)
    capped = build(encoder, max_pairs=7, **overrides)
    assert len(capped.pairs) == 7
    # a sample, kept in order: the capped pairs are a subsequence of the full list
    full = iter(dataclasses.asdict(p) for p in first.pairs)
    assert all(any(f == dataclasses.asdict(p) for f in full) for p in capped.pairs)


def test_llm_source_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match=r"weak\.llm"):
        WeakConfig.model_validate({"sources": ["llm"]})


# --- the LLM question writer against a local fake server ------------------------------------


class FakeChat(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if self.status != 200:
            self.send_response(self.status)
            self.end_headers()
            self.wfile.write(b"model overloaded")
            return
        prompt = body["messages"][0]["content"]
        topic = prompt.split("Document:\n", 1)[1].split()[0].lower()
        content = f"1. Why did {topic} revenue grow?\n2. What did auditors find about {topic}?\n"
        answer = {"choices": [{"message": {"role": "assistant", "content": content}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_chat() -> Iterator[str]:
    FakeChat.requests = []
    FakeChat.status = 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_llm_questions_are_cached_and_labeled_by_their_document(
    tokenizer: Any, fake_chat: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAK_TEST_KEY", "sk-test-123")
    llm = {
        "url": fake_chat,
        "model": "fake",
        "api_key_env": "WEAK_TEST_KEY",
        "questions_per_doc": 2,
        "max_docs": 8,
        "cache_dir": str(tmp_path / "llm"),
    }
    encoder = topic_encoder(tokenizer)
    first = build(encoder, sources=["llm"], llm=llm, dev_fraction=0.25)
    assert len(FakeChat.requests) == 8
    assert {r["path"] for r in FakeChat.requests} == {"/v1/chat/completions"}
    assert {r["auth"] for r in FakeChat.requests} == {"Bearer sk-test-123"}
    llm_pairs = by_source(first, "weak:llm")
    assert llm_pairs and all(
        CORPUS[p.provenance["doc_id"]].title.split()[0].lower() in p.query for p in llm_pairs
    )
    assert all(p.provenance["doc_id"] == p.provenance["query_doc_id"] for p in llm_pairs)
    dev_llm = [q for q in first.dev_ids if q.startswith("weak:llm:")]
    assert len(llm_pairs) + len(dev_llm) == 16  # 8 documents × 2 questions, all agreed
    cached = list((tmp_path / "llm").glob("*.json"))
    assert len(cached) == 8 and not any("sk-test" in f.read_text() for f in cached)
    # a rerun reads every answer from the cache: no request at all
    FakeChat.requests = []
    again = build(encoder, sources=["llm"], llm=llm, dev_fraction=0.25)
    assert FakeChat.requests == []
    assert [p.query for p in again.pairs] == [p.query for p in first.pairs]
    assert again.summary["pseudo_queries"]["llm"]["cached"] == 8


def test_llm_server_error_names_the_url(
    tokenizer: Any, fake_chat: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedtune.pairs._llm import LLMError

    FakeChat.status = 500
    llm = {"url": fake_chat, "model": "fake", "cache_dir": str(tmp_path / "llm")}
    with pytest.raises(LLMError, match=re.escape(f"{fake_chat}/chat/completions") + ".*HTTP 500"):
        build(topic_encoder(tokenizer), sources=["llm"], llm=llm)
    assert not list((tmp_path / "llm").glob("*.json"))  # nothing cached from a failure
    monkeypatch.delenv("WEAK_MISSING_KEY", raising=False)
    llm["api_key_env"] = "WEAK_MISSING_KEY"
    with pytest.raises(ConfigError, match=r"\$WEAK_MISSING_KEY"):
        build(topic_encoder(tokenizer), sources=["llm"], llm=llm)
