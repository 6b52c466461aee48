"""Helpers for tests and benchmarks: tiny models built in code, so nothing is downloaded."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def build_tiny_model(
    folder: str | Path,
    texts: Iterable[str],
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    max_length: int = 64,
) -> Path:
    """Save a small random BERT with a WordPiece vocabulary of ``texts`` as a
    sentence-transformers folder (mean pooling + normalisation); returns its path.

    The vocabulary holds every lower-cased word of ``texts`` plus single-character pieces,
    so any text tokenizes without [UNK] for known characters.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for w in words for c in w})
    pieces = chars + [f"##{c}" for c in chars]
    vocab = list(dict.fromkeys(specials + words + pieces))
    tokenizer = BertTokenizerFast(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True)
    tokenizer.model_max_length = max_length
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=max(128, max_length),
    )
    hf = Path(folder) / "hf"
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    transformer = modules.Transformer(str(hf), max_seq_length=max_length)
    pooling = modules.Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, modules.Normalize()], device="cpu")
    out = Path(folder) / "model"
    model.save(str(out))
    return out


def build_tiny_cross_encoder(folder: str | Path, texts: Iterable[str], *, seed: int = 0) -> Path:
    """Save a small random BERT cross-encoder (one relevance logit) for tests; returns its path."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    model_dir = build_tiny_model(Path(folder) / "base", texts, seed=seed)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )  # type: ignore[call-arg]
    out = Path(folder) / "cross"
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
