"""``--extend-vocab N``: the N costliest domain terms become single tokens.

Terms are chosen exactly as ``embedtune analyze`` lists them (frequent, split into 3+ pieces,
rare in general English). Each new token's embedding starts as the mean of the embeddings of
the pieces it replaces, so the untrained model reads the term roughly as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from embedtune.corpus.vocab import count_words, fragmented_terms, is_uncased, tokenize_words
from embedtune.errors import ConfigError
from embedtune.train.strategies import transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def extend_vocabulary(
    model: SentenceTransformer,
    texts: list[str],
    n: int,
    *,
    min_count: int = 3,
    max_general_zipf: float = 3.5,
) -> dict[str, Any]:
    """Add up to ``n`` domain terms of ``texts`` to the model's tokenizer and embeddings, in
    place; returns what was added (term, pieces it replaced)."""
    import torch
    from tokenizers import AddedToken

    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("extend_vocab needs a fast (Rust) tokenizer; this model has a slow one")
    uncased = is_uncased(tokenizer)
    counts = count_words(t.lower() if uncased else t for t in texts)
    ids = tokenize_words(tokenizer, sorted(counts))
    ranked, _ = fragmented_terms(counts, ids, min_count, max_general_zipf)
    terms = ranked[:n]
    if not terms:
        logger.warning("extend_vocab: no fragmented domain term occurs %d+ times", min_count)
        return {"requested": n, "added": 0, "terms": []}
    before = len(tokenizer)
    # single_word: "amortization" never matches inside "reamortizations"; normalized: an
    # uncased tokenizer matches it after lower-casing, like any other word
    tokenizer.add_tokens([AddedToken(t, single_word=True, normalized=True) for t in terms])
    hf = transformer(model)
    hf.resize_token_embeddings(len(tokenizer))
    weight = hf.get_input_embeddings().weight
    with torch.no_grad():
        for term in terms:
            weight[tokenizer.convert_tokens_to_ids(term)] = weight[ids[term]].mean(dim=0)
    logger.info("extend_vocab: %d domain terms added as tokens", len(terms))
    return {
        "requested": n,
        "added": len(tokenizer) - before,
        "terms": [
            {"term": t, "count": counts[t], "replaced": tokenizer.convert_ids_to_tokens(ids[t])}
            for t in terms
        ],
    }
