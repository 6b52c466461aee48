"""Word fragmentation under a tokenizer, for a corpus and for general English.

The general-English reference is the ``wordfreq`` package's English word list (version
recorded in the report): its most frequent words, weighted by their frequency, so corpus and
reference are both measured per running word. The list ships inside the wheel; nothing is
downloaded.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# runs of letters: "non-GAAP" is two words and "company's" is "company" + "s", since the
# tokenizer splits at punctuation anyway; numbers and codes are left out: they fragment in
# every domain and are not vocabulary
WORD = re.compile(r"[^\W\d_]+")
PIECE_BINS = ("1", "2", "3", "4", "5+")


@dataclass
class Fragmentation:
    """Per running word: tokens per word, share split into 3+ pieces, distribution."""

    words: int
    tokens_per_word: float
    share_3plus: float
    unk_share: float
    pieces: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "tokens_per_word": round(self.tokens_per_word, 4),
            "share_3plus": round(self.share_3plus, 4),
            "unk_share": round(self.unk_share, 5),
            "pieces": {k: round(v, 4) for k, v in self.pieces.items()},
        }


def count_words(texts: Iterable[str]) -> Counter[str]:
    """Occurrences of each word form in ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(WORD.findall(text))
    return counts


def tokenize_words(tokenizer: Any, words: list[str]) -> dict[str, list[int]]:
    """Each word's token ids on its own (no special tokens), batched."""
    out: dict[str, list[int]] = {}
    for start in range(0, len(words), 4096):
        chunk = words[start : start + 4096]
        ids = tokenizer(chunk, add_special_tokens=False)["input_ids"]
        out.update(zip(chunk, ids, strict=True))
    return out


def fragmentation(
    weights: dict[str, float], ids: dict[str, list[int]], unk_id: int | None
) -> Fragmentation:
    """Fragmentation of words weighted by ``weights`` (counts or frequencies)."""
    total = sum(weights.values()) or 1.0
    bins = dict.fromkeys(PIECE_BINS, 0.0)
    tokens = three = unk = 0.0
    for word, weight in weights.items():
        n = len(ids[word])
        tokens += weight * n
        three += weight * (n >= 3)
        unk += weight * (unk_id is not None and unk_id in ids[word])
        bins[str(n) if n < 5 else "5+"] += weight
    return Fragmentation(
        int(sum(weights.values())),
        tokens / total,
        three / total,
        unk / total,
        {k: v / total for k, v in bins.items()},
    )


def reference_weights(n_words: int) -> tuple[dict[str, float], dict[str, Any]]:
    """General English: wordfreq's top ``n_words`` English words and their frequencies."""
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", n_words, wordlist="large") if WORD.fullmatch(w)]
    weights = {w: word_frequency(w, "en", wordlist="large") for w in words}
    about = {
        "name": "wordfreq English 'large' list",
        "version": importlib.metadata.version("wordfreq"),
        "words": len(weights),
        "frequency_mass": round(sum(weights.values()), 4),
    }
    return weights, about


def general_zipf(words: list[str]) -> dict[str, float]:
    """How common each word is in general English (Zipf scale, 0 when unseen)."""
    from wordfreq import zipf_frequency

    return {w: zipf_frequency(w, "en", wordlist="large") for w in words}


def is_uncased(tokenizer: Any) -> bool:
    """Whether the tokenizer lower-cases (then words are counted lower-cased too)."""
    return bool(
        tokenizer("Zebra", add_special_tokens=False)["input_ids"]
        == tokenizer("zebra", add_special_tokens=False)["input_ids"]
    )


def fragmented_terms(
    counts: Counter[str], ids: dict[str, list[int]], min_count: int, max_general_zipf: float
) -> tuple[list[str], dict[str, float]]:
    """Domain terms, most costly first: words seen at least ``min_count`` times, split into 3+
    pieces, and rarer than ``max_general_zipf`` in general English; ranked by occurrences ×
    extra pieces (the tokens a single token per word would save). Returns them with their
    general-English Zipf values."""
    candidates = [w for w, c in counts.items() if c >= min_count and len(ids[w]) >= 3]
    zipf = general_zipf(candidates)
    domain = [w for w in candidates if zipf[w] < max_general_zipf]
    return sorted(domain, key=lambda w: (-counts[w] * (len(ids[w]) - 1), w)), zipf
