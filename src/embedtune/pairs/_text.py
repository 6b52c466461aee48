"""Text helpers of weak supervision: sentences, document frequencies, salient sentences and
key phrases, all without a model.

Sentence splitting is a regular expression, not a parser. It splits after ``.``, ``!`` or
``?`` when an upper-case letter, quote or bracket follows (with or without a space, since
text extracted from PDFs often glues sentences: ``change.We``), and at line breaks. It does
not split after a few common abbreviations (``Inc.``, ``No.``, ``e.g.``) nor after a single
capital (``U.S.``, initials). Its limits: other abbreviations followed by a capitalised word
(``Jan. Smith``) split wrongly, a sentence starting with a digit or a lower-case letter is
joined to the previous one, and languages without these marks are not split at all.

A text with no upper-case letter at all (lower-cased collections such as Cranfield, often
with spaced stops: ``slipstream . the results``) has no capital to look for: there a stop
followed by white space and a letter, digit or bracket ends the sentence, after the same
abbreviation and single-letter checks.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

_BOUNDARY = re.compile(r"(?<=[a-z0-9%)\]\"'”’]{2})[.!?]+[\"'”’)\]]*(?=\s*[A-Z“\"'(\[])|\n+")
_BOUNDARY_UNCASED = re.compile(
    r"(?<=[a-z0-9%)\]\"'”’]{2}) ?[.!?]+[\"'”’)\]]*(?=\s+[a-z0-9“\"'(\[])|\n+"
)
_ABBREVIATIONS = frozenset(
    [
        "al",
        "cf",
        "eq",
        "eqs",
        "ref",
        "refs",
        "inc",
        "corp",
        "co",
        "ltd",
        "llc",
        "plc",
        "no",
        "nos",
        "vs",
        "etc",
        "approx",
        "dept",
        "est",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "sr",
        "jr",
        "e.g",
        "i.e",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]|\d[\d.,%]*")
_LAST_WORD = re.compile(r"([A-Za-z.]+)$")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    # bm25s ships NLTK's English list; it is already a dependency of BM25.
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class Sentence:
    """An exact substring ``text[start:end]`` of a document's text."""

    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of ``text`` as exact substrings (see the module docstring for the limits)."""
    out: list[Sentence] = []
    start = 0
    boundary = _BOUNDARY if text != text.lower() else _BOUNDARY_UNCASED
    for match in boundary.finditer(text):
        if not match.group().startswith("\n"):
            word = _LAST_WORD.search(text[start : match.start()])
            if word and word.group(1).lower().strip(".") in _ABBREVIATIONS:
                continue
        _append(out, text, start, match.end())
        start = match.end()
    _append(out, text, start, len(text))
    return out


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lo = start + (len(piece) - len(piece.lstrip()))
        out.append(Sentence(lo, lo + len(stripped), stripped))


def words(text: str) -> list[str]:
    """Lower-cased word and number tokens."""
    return [w.lower() for w in _WORD.findall(text)]


def is_term(word: str) -> bool:
    """A content word: alphabetic, three letters or more, not a stop word."""
    return len(word) >= 3 and word[0].isalpha() and word not in _stopwords()


def word_count(text: str) -> int:
    """Number of word and number tokens."""
    return len(_WORD.findall(text))


class TermStats:
    """Document frequencies over the corpus, counted one document at a time (memory grows
    with the vocabulary, not with the corpus)."""

    def __init__(self, texts: Iterable[str], min_df: int, max_df: float) -> None:
        self.df: Counter[str] = Counter()
        self.n_docs = 0
        for text in texts:
            self.n_docs += 1
            self.df.update({w for w in words(text) if is_term(w)})
        self.min_df = min_df
        self.max_count = max(1, math.floor(max_df * self.n_docs))

    def idf(self, term: str) -> float | None:
        """BM25's idf, or None for a term too rare or too common to carry the topic."""
        df = self.df.get(term, 0)
        if df < self.min_df or df > self.max_count:
            return None
        return math.log((self.n_docs - df + 0.5) / (df + 0.5) + 1.0)


def salient_sentences(
    sentences: list[Sentence], stats: TermStats, length: tuple[int, int], limit: int
) -> list[Sentence]:
    """Up to ``limit`` sentences with the highest mean idf of their distinct terms.

    Mean (not summed) idf so long sentences do not win by length; a sentence needs three
    scored terms and mostly words (not a row of a table) to be a query at all.
    """
    scored: list[tuple[float, int, Sentence]] = []
    for position, sentence in enumerate(sentences):
        tokens = words(sentence.text)
        if not length[0] <= len(tokens) <= length[1]:
            continue
        if sum(t[0].isalpha() for t in tokens) < 0.7 * len(tokens):
            continue
        idfs = [v for t in set(tokens) if is_term(t) and (v := stats.idf(t)) is not None]
        if len(idfs) >= 3:
            scored.append((-sum(idfs) / len(idfs), position, sentence))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [sentence for _, _, sentence in scored[:limit]]


def key_phrases(text: str, stats: TermStats, terms: int, limit: int) -> list[str]:
    """Up to ``limit`` keyword queries of ``terms`` units each, best TF-IDF units first.

    A unit is a term or a bigram of two adjacent terms seen at least twice in the document;
    a bigram scores as its two words would (tf × summed idf), so no corpus-wide bigram table
    is needed. No word appears twice in one query.
    """
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for sentence in split_sentences(text):
        tokens = words(sentence.text)
        unigrams.update(t for t in tokens if is_term(t))
        bigrams.update((a, b) for a, b in pairwise(tokens) if is_term(a) and is_term(b))
    units: list[tuple[float, str, tuple[str, ...]]] = []
    for term, tf in unigrams.items():
        idf = stats.idf(term)
        if idf is not None:
            units.append((tf * idf, term, (term,)))
    for (a, b), tf in bigrams.items():
        ia, ib = stats.idf(a), stats.idf(b)
        if tf >= 2 and ia is not None and ib is not None and a != b:
            # a bigram counts as both its words would: tf × (idf_a + idf_b)
            units.append((tf * (ia + ib), f"{a} {b}", (a, b)))
    units.sort(key=lambda u: (-u[0], u[1]))
    chosen: list[str] = []
    used: set[str] = set()
    for _, phrase, parts in units:
        if used.intersection(parts):
            continue  # a word once per query: more distinct words retrieve more precisely
        chosen.append(phrase)
        used.update(parts)
        if len(chosen) >= terms * limit:
            break
    return [" ".join(chosen[i : i + terms]) for i in range(0, len(chosen), terms)][:limit]
