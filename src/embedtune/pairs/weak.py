"""Label-free ("weak") supervision: training pairs and a pseudo-dev set from a corpus alone.

Three ingredients, each from the corpus only:

* Heuristic pairs with exact positives, from training documents: title or markdown heading →
  the first passage of its body (``weak:title``), passage i → passage i + 1 of one document
  (``weak:adjacent``), and the first sentence → the start of the rest (``weak:lead``).
* Pseudo-queries made without a model: salient sentences (highest mean idf), key phrases
  (top TF-IDF terms and bigrams), titles of held-out documents and, optionally, questions
  from an LLM endpoint. Each is labeled with its BM25 top document (an LLM question with its
  own document) and kept only if the base model agrees: that document must be in the base
  model's top ``agreement_k`` (max-passage scoring, as the evaluation does). Kept training
  queries then go through :func:`~embedtune.pairs.mine.mine_labeled_pairs` for the positive
  passage, hard negatives and the false-negative filter. A sentence query's positive has the
  sentence cut out (Inverse Cloze Task), so training cannot win by spotting a copy.
* A pseudo-dev set: a seeded fraction of documents is held out; their pseudo-queries (key
  phrases, titles and LLM questions by default, not verbatim sentences, which BM25 or any
  model finds by copy) form the dev set over the full corpus, and no training pair takes a
  positive or a negative from a held-out document.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.pairs import Pair
from embedtune.corpus.passages import split_passages
from embedtune.corpus.types import Dataset, Document
from embedtune.errors import DataError
from embedtune.pairs._text import (
    Sentence,
    TermStats,
    key_phrases,
    salient_sentences,
    split_sentences,
    word_count,
)
from embedtune.pairs.config import PairsConfig, WeakConfig

if TYPE_CHECKING:
    from embedtune.retrieval.dense import DenseEncoder

logger = logging.getLogger(__name__)

_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_QUERY_KINDS = ("sentence", "keyphrase", "title", "llm")
_QUERY_BLOCK = 2048  # pseudo-queries per agreement search
_MINE_BLOCK = 8192  # pseudo-queries per call of the labeled miner


@dataclass
class WeakData:
    """Weak supervision for one corpus."""

    pairs: list[Pair]
    """Training pairs, all from training (not held-out) documents."""
    dev: Dataset
    """Pseudo-dev set: the full corpus, the held-out documents' pseudo-queries and qrels."""
    dev_ids: list[str]
    """The dev query ids, in corpus order."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Counts per source, agreement filtering, dev size, config and the data manifest."""


@dataclass
class _Query:
    """A pseudo-query and the document it was made from."""

    qid: str
    text: str
    kind: str
    doc: str
    label: str | None = None


def build_weak_supervision(
    dataset: Dataset,
    encoder: DenseEncoder,
    passages: PassageConfig,
    pairs_config: PairsConfig,
    weak: WeakConfig,
) -> WeakData:
    """Training pairs and a pseudo-dev set from ``dataset.corpus`` alone (queries and qrels
    of ``dataset`` are ignored).

    Args:
        dataset: The corpus (its queries and qrels are not used).
        encoder: The base model; it filters pseudo-queries by agreement and mines negatives.
        passages: How documents are split into passages (as for evaluation).
        pairs_config: Positive choice, hard negatives and the false-negative filter.
        weak: Which sources, the agreement filter, the dev hold-out and the caps.

    Returns:
        The pairs, the pseudo-dev ``Dataset`` and its query ids, and a summary.

    Raises:
        DataError: The corpus is empty, or every candidate was filtered (the message names
            the setting to loosen).
    """
    started = time.perf_counter()
    docs = list(dataset.corpus.values())
    if not docs:
        raise DataError("weak supervision needs a corpus, and this one is empty")
    dev_docs = hold_out_documents([d.id for d in docs], weak.dev_fraction, weak.dev_seed)
    counts: Counter[str] = Counter()
    tokenizer = encoder.model.tokenizer
    train_docs = [d for d in docs if d.id not in dev_docs]
    heuristic = heuristic_pairs(train_docs, tokenizer, passages, weak, counts)
    stats = TermStats((d.full_text for d in docs), weak.min_df, weak.max_df)
    queries = list(pseudo_queries(docs, dev_docs, stats, weak))
    if "llm" in weak.sources:
        queries.extend(_llm_queries(docs, dev_docs, weak, counts))
    for query in queries:
        counts[f"{query.kind}.made"] += 1
    with contextlib.ExitStack() as stack:
        if encoder.cache_dir is None:
            # agreement search and mining then share one encoding pass of the corpus
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="embedtune-weak-"))
            encoder = dataclasses.replace(encoder, cache_dir=Path(tmp))
        kept = _label_and_agree(dataset, queries, dev_docs, encoder, passages, pairs_config, weak)
        for query in kept:
            counts[f"{query.kind}.kept"] += 1
        counts.update(f"{q.kind}.{q.label}" for q in queries if q.label and q.label[0] == "-")
        # the cap samples before mining, so capped-away queries cost no mining
        heuristic, train_queries = _cap(
            heuristic, [q for q in kept if q.doc not in dev_docs], weak.max_pairs, weak.dev_seed
        )
        mined = _mine(dataset, train_queries, dev_docs, encoder, passages, pairs_config, counts)
    dev_queries = [q for q in kept if q.doc in dev_docs and q.kind in weak.dev_sources]
    if len(dev_queries) > weak.dev_max_queries:
        chosen = set(
            random.Random(weak.dev_seed).sample(range(len(dev_queries)), weak.dev_max_queries)
        )
        counts["dev.capped"] = len(dev_queries) - weak.dev_max_queries
        dev_queries = [q for i, q in enumerate(dev_queries) if i in chosen]  # corpus order kept
    pairs = heuristic + mined
    _check_not_empty(pairs, dev_queries, weak, counts, len(train_docs))
    dev = Dataset(
        corpus=dataset.corpus,
        queries={q.qid: q.text for q in dev_queries},
        qrels={q.qid: {str(q.label): 1} for q in dev_queries},
        split="weak-dev",
        manifest=dataset.manifest,
    )
    summary = _summary(dataset, pairs, dev_queries, dev_docs, counts, weak, pairs_config, passages)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    logger.info(
        "weak supervision: %d pairs %s, %d dev queries from %d held-out documents",
        len(pairs),
        summary["sources"],
        len(dev_queries),
        len(dev_docs),
    )
    return WeakData(pairs, dev, list(dev.queries), summary)


def hold_out_documents(doc_ids: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of documents (at least one when ``fraction`` > 0), chosen by a
    hash of seed and id, so the choice does not depend on corpus order."""
    if fraction <= 0:
        return set()
    count = max(1, round(fraction * len(doc_ids)))
    if count >= len(doc_ids):
        raise DataError(
            f"weak.dev_fraction {fraction} of {len(doc_ids)} document(s) leaves none to "
            "train on; lower weak.dev_fraction or add documents"
        )
    order = sorted(doc_ids, key=lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest())
    return set(order[:count])


# --- heuristic pairs ------------------------------------------------------------------------


def heuristic_pairs(
    docs: list[Document],
    tokenizer: Any,
    passages: PassageConfig,
    weak: WeakConfig,
    counts: Counter[str],
) -> list[Pair]:
    """Title/heading → body, adjacent passages and lead → rest pairs of ``docs``.

    Positives are one passage long. Title and adjacent positives are cut without the title
    prefix and with no overlap between neighbours (stride = window): a positive that repeats
    its query would teach copy detection.
    """
    plain = passages.model_copy(update={"title": False, "stride": passages.window})
    pairs: list[Pair] = []
    if "title" in weak.sources:
        pairs.extend(_title_pairs(docs, tokenizer, plain, weak.max_queries_per_doc))
    if "adjacent" in weak.sources:
        pairs.extend(_adjacent_pairs(docs, tokenizer, plain, weak.max_queries_per_doc))
    if "lead" in weak.sources:
        pairs.extend(_lead_pairs(docs, tokenizer, passages, weak.sentence_words))
    counts.update(p.provenance["source"] for p in pairs)
    return pairs


def has_own_title(doc: Document) -> bool:
    """A non-empty title that is not just the start of the text (then it says nothing new)."""
    title = " ".join(doc.title.split()).lower()
    start = " ".join(doc.text.lstrip("# \t\n").split()).lower()
    return bool(title) and not start.startswith(title)


def repeated_title_end(doc: Document) -> int:
    """Where the body starts when the text opens by repeating the title as a line or a
    sentence of its own (``wing flutter . the flutter of ...``, common in abstracts), else 0.

    A title that is only the first words of a longer sentence is not cut: what follows would
    be a fragment.
    """
    title = doc.title.split()
    if not title:
        return 0
    pattern = r"[#\s]*" + r"\s+".join(re.escape(w) for w in title)
    match = re.match(pattern, doc.text, flags=re.IGNORECASE)
    if match is None:
        return 0
    end = re.match(r"\s*[.:!?;\-–—]*", doc.text[match.end() :])
    assert end is not None  # the pattern matches the empty string
    rest = doc.text[match.end() + end.end() :]
    ends_sentence = title[-1][-1] in ".:!?" or end.group().strip() or rest.startswith("\n")
    if not ends_sentence or not rest.strip():
        return 0
    return len(doc.text) - len(rest.lstrip())


def _body_sentences(doc: Document) -> list[Sentence]:
    """The text's sentences after a repeated title."""
    start = repeated_title_end(doc)
    return [s for s in split_sentences(doc.text) if s.start >= start]


def _first_passages(
    items: list[tuple[str, str]], tokenizer: Any, config: PassageConfig
) -> list[str]:
    """The first passage of each (title, text)."""
    docs = [Document(str(i), title, text) for i, (title, text) in enumerate(items)]
    split = split_passages(docs, tokenizer, config)
    return [split.texts[int(b)] for b in split.bounds[:-1]]


def _title_pairs(
    docs: list[Document], tokenizer: Any, plain: PassageConfig, per_doc: int
) -> list[Pair]:
    """Document title → its first passage; markdown heading → its section's first passage."""
    wanted: list[tuple[str, str, dict[str, Any]]] = []
    for doc in docs:
        if has_own_title(doc):
            wanted.append((doc.title.strip(), doc.text, {"doc_id": doc.id, "from": "title"}))
        elif body_start := repeated_title_end(doc):
            body = doc.text[body_start:]  # the title is cut: a positive must not repeat it
            wanted.append((doc.title.strip(), body, {"doc_id": doc.id, "from": "title"}))
        for n, (heading, body) in enumerate(_sections(doc.text)[:per_doc]):
            wanted.append((heading, body, {"doc_id": doc.id, "from": "heading", "heading": n}))
    positives = _first_passages([("", body) for _, body, _ in wanted], tokenizer, plain)
    return [
        Pair(query, positive, [], {"source": "weak:title", **extra})
        for (query, _, extra), positive in zip(wanted, positives, strict=True)
        if positive.strip()
    ]


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each markdown heading whose body has some words."""
    found = list(_HEADING.finditer(text))
    out = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        body = text[match.end() : end].strip()
        if word_count(body) >= 5:
            out.append((match.group(1).strip(), body))
    return out


def _adjacent_pairs(
    docs: list[Document], tokenizer: Any, plain: PassageConfig, per_doc: int
) -> list[Pair]:
    """Passage i → passage i + 1, up to ``per_doc`` per document, spread over the document."""
    split = split_passages(docs, tokenizer, plain)
    pairs = []
    for index, doc in enumerate(docs):
        lo, hi = int(split.bounds[index]), int(split.bounds[index + 1])
        texts = split.texts[lo:hi]
        # the last window is aligned to the text's end and may overlap its neighbour
        usable = [i for i in range(len(texts) - 1) if not _overlap(texts[i], texts[i + 1])]
        if not usable:
            continue
        picks = np.unique(np.linspace(0, len(usable) - 1, min(per_doc, len(usable))).round())
        for pick in picks.astype(int):
            i = usable[pick]
            provenance = {"source": "weak:adjacent", "doc_id": doc.id, "passages": [i, i + 1]}
            pairs.append(Pair(texts[i], texts[i + 1], [], provenance))
    return pairs


def _overlap(first: str, second: str) -> bool:
    """Whether ``second`` starts with text that ``first`` ends with (ten characters or more)."""
    longest = min(len(first), len(second))
    return any(first.endswith(second[:k]) for k in range(longest, 9, -1))


def _lead_pairs(
    docs: list[Document], tokenizer: Any, passages: PassageConfig, length: tuple[int, int]
) -> list[Pair]:
    """First sentence → the first passage of the rest of the document (sentence removed).
    A title repeated at the start of the text is not a lead: ``weak:title`` has it."""
    wanted: list[tuple[Document, str, str]] = []
    for doc in docs:
        sentences = _body_sentences(doc)
        if len(sentences) < 2 or not length[0] <= word_count(sentences[0].text) <= length[1]:
            continue
        rest = doc.text[sentences[0].end :].strip()
        if word_count(rest) >= length[0]:
            wanted.append((doc, sentences[0].text, rest))
    positives = _first_passages([(d.title, rest) for d, _, rest in wanted], tokenizer, passages)
    return [
        Pair(lead, positive, [], {"source": "weak:lead", "doc_id": doc.id})
        for (doc, lead, _), positive in zip(wanted, positives, strict=True)
    ]


# --- pseudo-queries -------------------------------------------------------------------------


def pseudo_queries(
    docs: list[Document], dev_docs: set[str], stats: TermStats, weak: WeakConfig
) -> Iterator[_Query]:
    """Sentence, key-phrase and (held-out documents only) title queries, one document at a
    time. A training document's title already gives an exact ``weak:title`` pair."""
    for doc in docs:
        dev = doc.id in dev_docs
        # dev kinds do not depend on the training sources: a recipe without key-phrase
        # training is still judged on key-phrase (and title) queries of held-out documents
        kinds = [
            k
            for k in (weak.dev_sources if dev else weak.sources)
            if k in _QUERY_KINDS and k != "llm"
        ]
        seen: set[str] = set()
        for kind in kinds:
            for n, text in enumerate(_doc_queries(doc, kind, dev, stats, weak)):
                if text.lower() not in seen:
                    seen.add(text.lower())
                    yield _Query(f"weak:{kind}:{doc.id}:{n}", text, kind, doc.id)


def _doc_queries(
    doc: Document, kind: str, dev: bool, stats: TermStats, weak: WeakConfig
) -> list[str]:
    limit = weak.max_queries_per_doc
    if kind == "sentence":
        sentences = _body_sentences(doc)
        if "lead" in weak.sources and not dev:
            sentences = sentences[1:]  # the lead sentence already makes a weak:lead pair
        return [s.text for s in salient_sentences(sentences, stats, weak.sentence_words, limit)]
    if kind == "keyphrase":
        return key_phrases(doc.full_text, stats, weak.keyphrase_terms, limit)
    if kind == "title" and dev and has_own_title(doc):
        return [doc.title.strip()]
    return []


def _llm_queries(
    docs: list[Document], dev_docs: set[str], weak: WeakConfig, counts: Counter[str]
) -> list[_Query]:
    """Questions from the LLM endpoint for up to ``llm.max_docs`` documents (a seeded
    choice), each labeled with its own document."""
    from embedtune.pairs._llm import QuestionWriter
    from embedtune.retrieval.cache import default_cache_dir

    config = weak.llm
    if config is None:  # the config validator requires it with source 'llm'
        return []
    if dev_docs and "llm" not in weak.dev_sources:
        docs = [d for d in docs if d.id not in dev_docs]
    cache = Path(config.cache_dir or Path(default_cache_dir()) / "llm-questions")
    writer = QuestionWriter(config, cache)
    order = sorted(
        docs, key=lambda d: hashlib.sha256(f"{weak.dev_seed}:llm:{d.id}".encode()).hexdigest()
    )
    chosen = {d.id for d in order[: config.max_docs]}
    queries = []
    for doc in docs:  # corpus order, so ids and output order do not depend on the hash
        if doc.id in chosen:
            for n, text in enumerate(writer.questions(doc)):
                queries.append(_Query(f"weak:llm:{doc.id}:{n}", text, "llm", doc.id, doc.id))
    counts["llm.requests"] += writer.requests
    counts["llm.cached"] += writer.cached
    logger.info(
        "llm: %d questions for %d documents (%d requests, %d from cache)",
        len(queries),
        len(chosen),
        writer.requests,
        writer.cached,
    )
    return queries


def _label_and_agree(
    dataset: Dataset,
    queries: list[_Query],
    dev_docs: set[str],
    encoder: DenseEncoder,
    passages: PassageConfig,
    pairs_config: PairsConfig,
    weak: WeakConfig,
) -> list[_Query]:
    """Label each query with its BM25 top document and keep those the base model agrees
    with. A dropped query's label says why: ``-no_bm25_match``, ``-cross_split`` (the
    label is on the other side of the dev hold-out: training on it would leak) or
    ``-disagree``."""
    from embedtune.retrieval.bm25 import BM25Index
    from embedtune.retrieval.dense import dense_search

    docs = list(dataset.corpus.values())
    doc_ids = [d.id for d in docs]
    bm25 = BM25Index(doc_ids, [d.full_text for d in docs])
    for query in queries:
        if query.label is None:
            top = bm25.search({"q": query.text}, k=1)["q"]
            query.label = next(iter(top), "-no_bm25_match")
        if query.label[0] != "-" and (query.label in dev_docs) != (query.doc in dev_docs):
            query.label = "-cross_split"
    labeled = [q for q in queries if q.label and q.label[0] != "-"]
    if not labeled:
        return []
    split = split_passages(docs, encoder.model.tokenizer, passages)
    # the base model reads the whole corpus here: minutes on a CPU, never without progress
    encoder = dataclasses.replace(encoder, show_progress=True)  # shares the stats
    logger.info(
        "pairs: agreement search of %d pseudo-queries over %d passages",
        len(labeled),
        len(split.texts),
    )
    run = {}
    # blocks of queries bound the queries × chunk score matrix; passages come from the cache
    for start in range(0, len(labeled), _QUERY_BLOCK):
        block = labeled[start : start + _QUERY_BLOCK]
        run.update(
            dense_search(
                encoder,
                {q.qid: q.text for q in block},
                split.doc_ids,
                split.texts,
                split.bounds,
                k=weak.agreement_k,
                chunk_passages=pairs_config.chunk_passages,
                desc="agreement search",
            )
        )
    kept = []
    for query in labeled:
        if query.label in run[query.qid]:
            kept.append(query)
        else:
            query.label = "-disagree"
    return kept


# --- mining and the Inverse Cloze positive --------------------------------------------------


def _mine(
    dataset: Dataset,
    queries: list[_Query],
    dev_docs: set[str],
    encoder: DenseEncoder,
    passages: PassageConfig,
    config: PairsConfig,
    counts: Counter[str],
) -> list[Pair]:
    """Pairs of the kept training queries via the labeled miner, then the weak rules: no
    negative from a held-out document, and Inverse Cloze positives for sentence queries.

    The miner is asked for twice the negatives, so those rules can drop some and still
    leave ``negatives.per_query``.
    """
    from embedtune.pairs.mine import mine_labeled_pairs

    if not queries:
        return []
    pseudo = Dataset(
        corpus=dataset.corpus,
        queries={q.qid: q.text for q in queries},
        qrels={q.qid: {str(q.label): 1} for q in queries},
        split="weak",
        manifest=dataset.manifest,
    )
    negatives = config.negatives
    wide = config.model_copy(
        update={"negatives": negatives.model_copy(update={"per_query": negatives.per_query * 2})}
    )
    mined: list[Pair] = []
    qids = list(pseudo.queries)
    # the miner holds queries × chunk scores; blocks bound that (each re-reads the cache)
    for start in range(0, len(qids), _MINE_BLOCK):
        block = qids[start : start + _MINE_BLOCK]
        mined.extend(mine_labeled_pairs(pseudo, encoder, passages, wide, query_ids=block)[0])
    by_id = {q.qid: q for q in queries}
    pairs = []
    for pair in mined:
        query = by_id[pair.provenance["query_id"]]
        _drop_negatives(pair, lambda _, meta: meta["doc_id"] in dev_docs, "held_out_doc", counts)
        if query.kind == "sentence" and not _inverse_cloze(
            pair, dataset.corpus[str(query.label)], encoder.model.tokenizer, passages, counts
        ):
            continue
        pairs.append(pair)
        pair.provenance.update(
            {"source": f"weak:{query.kind}", "query_doc_id": query.doc, "doc_id": query.label}
        )
    _rescore_cloze(pairs, encoder, config, counts)
    for pair in pairs:
        pair.negatives = pair.negatives[: negatives.per_query]
        pair.provenance["negatives"] = pair.provenance["negatives"][: negatives.per_query]
    return pairs


def _drop_negatives(
    pair: Pair, drop: Callable[[str, dict[str, Any]], bool], reason: str, counts: Counter[str]
) -> None:
    """Remove the negatives for which ``drop(text, provenance entry)`` holds."""
    metas = pair.provenance["negatives"]
    keep = [i for i, meta in enumerate(metas) if not drop(pair.negatives[i], meta)]
    counts[f"negatives_filtered_{reason}"] += len(pair.negatives) - len(keep)
    pair.negatives = [pair.negatives[i] for i in keep]
    pair.provenance["negatives"] = [pair.provenance["negatives"][i] for i in keep]


def _inverse_cloze(
    pair: Pair, doc: Document, tokenizer: Any, passages: PassageConfig, counts: Counter[str]
) -> bool:
    """Cut the query sentence out of the positive; False when the pair must be dropped.

    If the miner's positive holds only part of the sentence (it straddles a window edge),
    another passage of the document that holds all of it is used instead.
    """
    sentence = pair.query
    positive = pair.positive
    if sentence not in positive:
        whole = [t for t in split_passages([doc], tokenizer, passages).texts if sentence in t]
        if not whole:
            if sentence in doc.text:  # longer than any window: no copy-free positive
                counts["sentence.dropped_no_passage"] += 1
                return False
            return True  # the labeled document does not contain the sentence: no copy
        positive = whole[0]
    rest = " ".join(part.strip() for part in positive.split(sentence, 1)).strip()
    if word_count(rest) < 5:
        counts["sentence.dropped_short_positive"] += 1
        return False
    pair.positive = rest
    pair.provenance["positive"]["inverse_cloze"] = True
    # a negative holding the sentence (a duplicate document) would be a false negative
    _drop_negatives(pair, lambda text, meta: sentence in text, "holds_query", counts)
    return True


def _rescore_cloze(
    pairs: list[Pair], encoder: DenseEncoder, config: PairsConfig, counts: Counter[str]
) -> None:
    """Re-apply the false-negative filter against the new (sentence-free) positives, which
    score lower than the verbatim ones the miner compared with."""
    cloze = [p for p in pairs if p.provenance["positive"].get("inverse_cloze")]
    if not cloze:
        return
    margin = config.negatives.margin
    if config.negatives.cross_encoder:
        from embedtune.pairs.mine import _CrossScorer

        cross = _CrossScorer(config.negatives.cross_encoder)
        scores = [float(cross(p.query, [p.positive])[0]) for p in cloze]
    else:
        queries = encoder.encode_queries([p.query for p in cloze])
        positives = encoder.encode_documents([p.positive for p in cloze])
        scores = [float(s) for s in np.sum(queries * positives, axis=1)]
    for pair, score in zip(cloze, scores, strict=True):
        pair.provenance["positive"]["score"] = score
        _drop_negatives(pair, _scores_above(score - margin), "false_negative", counts)


def _scores_above(threshold: float) -> Callable[[str, dict[str, Any]], bool]:
    """A negative scoring above ``threshold`` (positive − margin): a likely false negative."""
    return lambda _, meta: bool(meta["score"] > threshold)


# --- assembly -------------------------------------------------------------------------------


def _cap(
    pairs: list[Pair], queries: list[_Query], limit: int | None, seed: int
) -> tuple[list[Pair], list[_Query]]:
    """A seeded sample of ``limit`` of the heuristic pairs and training queries together,
    each kept in its original order."""
    total = len(pairs) + len(queries)
    if limit is None or total <= limit:
        return pairs, queries
    keep = set(random.Random(seed).sample(range(total), limit))
    return (
        [p for i, p in enumerate(pairs) if i in keep],
        [q for i, q in enumerate(queries, start=len(pairs)) if i in keep],
    )


def _check_not_empty(
    pairs: list[Pair],
    dev_queries: list[_Query],
    weak: WeakConfig,
    counts: Counter[str],
    train_docs: int,
) -> None:
    """A DataError naming the setting to loosen when nothing (or no dev set) is left."""
    made = sum(v for k, v in counts.items() if k.endswith(".made"))
    disagree = sum(v for k, v in counts.items() if k.endswith(".-disagree"))
    where = (
        f"{made} pseudo-queries made, {disagree} dropped because the base model's top "
        f"{weak.agreement_k} missed their BM25 document"
    )
    if disagree:
        hint = "raise weak.agreement_k (the base-model agreement filter)"
    elif made == 0:
        hint = (
            "add weak.sources, or loosen weak.sentence_words, weak.min_df or weak.max_df "
            "(no pseudo-query could be made)"
        )
    else:
        hint = "add weak.sources or check that the documents have text BM25 can match"
    if not pairs:
        raise DataError(
            f"weak supervision made no training pairs from {train_docs} training documents "
            f"({where})",
            hint=hint,
        )
    if weak.dev_fraction > 0 and not dev_queries:
        raise DataError(
            f"weak supervision made no pseudo-dev queries ({where})",
            hint=f"{hint}; or raise weak.dev_fraction, or add kinds to weak.dev_sources "
            f"(now {weak.dev_sources})",
        )


def _summary(
    dataset: Dataset,
    pairs: list[Pair],
    dev_queries: list[_Query],
    dev_docs: set[str],
    counts: Counter[str],
    weak: WeakConfig,
    pairs_config: PairsConfig,
    passages: PassageConfig,
) -> dict[str, Any]:
    queries: dict[str, dict[str, int]] = {}
    for key, value in sorted(counts.items()):
        kind, _, what = key.partition(".")
        if kind in _QUERY_KINDS and what:
            queries.setdefault(kind, {})[what.lstrip("-")] = value
    return {
        "pairs": len(pairs),
        "sources": dict(sorted(Counter(p.provenance["source"] for p in pairs).items())),
        "heuristic_made": {k: v for k, v in sorted(counts.items()) if k.startswith("weak:")},
        "pseudo_queries": queries,
        "negatives_per_pair": dict(sorted(Counter(str(len(p.negatives)) for p in pairs).items())),
        "filtered": {k: v for k, v in sorted(counts.items()) if k.startswith("negatives_")},
        "documents": {"total": len(dataset.corpus), "dev": len(dev_docs)},
        "dev": {
            "queries": len(dev_queries),
            "documents_with_queries": len({q.doc for q in dev_queries}),
            "sources": dict(sorted(Counter(q.kind for q in dev_queries).items())),
            "capped": counts.get("dev.capped", 0),
        },
        "config": weak.model_dump(mode="json"),
        "pairs_config": pairs_config.model_dump(mode="json"),
        "passages": passages.model_dump(),
        "data": dataset.manifest.to_dict(),
    }
