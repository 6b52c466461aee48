"""Helpers for tests and benchmarks: tiny models built in code, so nothing is downloaded."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedtune.model_folder import ModelSettings


def settings_record(
    base_name: str, base_sha256: str, strategy: str = "full", **fields: Any
) -> ModelSettings:
    """A settings record as training writes it, for a model folder made in a test or a
    benchmark: neutral dev scores and outcome unless ``fields`` (top-level keys) say otherwise.
    """
    from embedtune.model_folder import ModelSettings

    scores = {"ndcg@10": 0.5}
    record: dict[str, Any] = {
        "base_model": {"name": base_name, "sha256": base_sha256},
        "strategy": strategy,
        "config": {},
        "seed": 42,
        "pairs": 10,
        "dev": {"base": scores, "bm25": scores, "tuned": scores},
        "outcome": {
            "better": False,
            "better_than_base": False,
            "better_than_bm25": None,
            "p_vs_base": 1.0,
        },
        "training": {"steps": 1, "seconds": 1.0, "trainable_parameters": 1, "parameters": 1},
    }
    return ModelSettings.model_validate({**record, **fields})


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


# --- labeled personal data, for the governance tests and benchmark -------------------------

PII_TYPES = ("email", "phone", "ssn", "credit_card", "iban", "ip", "dob", "secret")


def _luhn_complete(digits: str) -> str:
    """``digits`` plus the check digit that makes the number pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these double once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    """An IBAN with a correct mod-97 check: digits for ``country`` + '00' + bban."""
    moved = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in moved))
    check = 98 - number % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def pii_examples(seed: int = 0, per_type: int = 50) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sentences with planted values of every type, and near-misses that must not fire.

    Returns ``(text, [(type, value), ...])``. Values include lower-case IBANs, SSNs that were
    never issued but carry an SSN label, PEM private keys (the whole block), Stripe keys, JWTs
    and credential assignments (``aws_secret_access_key = ...``: the value is labelled).
    Near-miss sentences carry no labels: card numbers failing Luhn, IBANs with a wrong check,
    never-issued SSNs without a label, dates without birth context, version strings, amounts,
    credential words without a credential, and unroutable "IPs" such as 999.1.2.3.
    """
    import random

    rng = random.Random(seed)
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    b64 = lambda n, chars=_BASE64: "".join(rng.choice(chars) for _ in range(n))  # noqa: E731
    jwt = _BASE64[:62] + "-_"  # base64url
    letters = lambda n: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))  # noqa: E731
    names = ["alice", "bob", "maria.lopez", "j.smith", "chen_wei", "o.brien", "kim99"]
    domains = ["example.com", "hospital.org", "bank.co.uk", "mail.example.net", "uni.edu"]
    months = ["January", "Feb", "March", "Apr", "May", "June", "Jul", "August", "Sept", "Oct"]

    def value(kind: str) -> str:
        if kind == "email":
            return f"{rng.choice(names)}{rng.randint(1, 999)}@{rng.choice(domains)}"
        if kind == "phone":
            # assigned US area codes: python-phonenumbers (rightly) rejects unassigned ones
            area = rng.choice([212, 213, 202, 305, 312, 404, 415, 503, 512, 617, 646, 702, 713])
            mid, end = rng.randint(201, 989), digits(4)
            return rng.choice(
                [
                    f"({area}) {mid}-{end}",
                    f"{area}-{mid}-{end}",
                    f"+1 {area} {mid} {end}",
                    f"{area}.{mid}.{end}",
                    f"+44 20 7{digits(3)} {digits(4)}",
                ]
            )
        if kind == "ssn":
            return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        if kind == "labelled ssn":  # never issued: found only because of its label
            return rng.choice(
                [
                    "123-45-6789",
                    f"{rng.choice(['000', '666', '9' + digits(2)])}-{digits(2)}-{digits(4)}",
                ]
            )
        if kind == "credit_card":
            number = _luhn_complete(rng.choice(["40", "45", "51", "52", "55"]) + digits(13))
            sep = rng.choice([" ", "-", ""])
            return sep.join(number[i : i + 4] for i in range(0, 16, 4))
        if kind == "iban":
            country = rng.choice(["GB", "DE", "NL"])
            bban = {"GB": letters(4) + digits(14), "DE": digits(18), "NL": letters(4) + digits(10)}
            iban = _iban(country, bban[country])
            # written lower-case or without spaces too
            return rng.choice([iban, iban, iban.lower(), iban.replace(" ", "").lower()])
        if kind == "ip":
            if rng.random() < 0.7:
                return ".".join(str(rng.randint(1, 254)) for _ in range(4))
            return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))
        if kind == "dob":
            day, year = rng.randint(1, 28), rng.randint(1930, 2010)
            return rng.choice(
                [
                    f"{rng.randint(1, 12):02d}/{day:02d}/{year}",
                    f"{rng.choice(months)} {day}, {year}",
                    f"{day} {rng.choice(months)} {year}",
                    f"{year}-{rng.randint(1, 12):02d}-{day:02d}",
                ]
            )
        if kind == "secret":
            pem = "\n".join(b64(64) for _ in range(rng.randint(2, 5)))
            return rng.choice(
                [
                    "AKIA" + letters(16),
                    "ghp_" + "".join(rng.choice("abcdefXYZ0123456789") for _ in range(36)),
                    "sk-" + "".join(rng.choice("abcdefghijkLMNOP0123456789") for _ in range(32)),
                    rng.choice(["sk_live_", "sk_test_", "rk_live_"]) + b64(24, _BASE64[:62]),
                    f"eyJ{b64(16, jwt)}.eyJ{b64(24, jwt)}.{b64(43, jwt)}",
                    f"-----BEGIN RSA PRIVATE KEY-----\n{pem}\n-----END RSA PRIVATE KEY-----",
                ]
            )
        if kind == "assigned secret":  # the value of a credential assignment
            return b64(40)
        raise ValueError(kind)

    templates = {
        "email": ["Please write to {} for the form.", "Contact: {}", "cc {} on the reply"],
        "phone": ["Call the clinic at {} before noon.", "Phone: {}", "reach her on {} today"],
        "ssn": ["SSN {} on file.", "Her social security number is {}.", "member id {} verified"],
        "labelled ssn": ["SSN: {}", "social security number {} on file"],
        "credit_card": ["Paid with card {} yesterday.", "Card number: {}", "charged to {}"],
        "iban": ["Wire the refund to {} please.", "IBAN: {}", "account {} was debited"],
        "ip": ["Login from {} was blocked.", "client ip {}", "requests came from {} overnight"],
        "dob": ["Patient born {} was admitted.", "DOB: {}", "date of birth {} confirmed"],
        "secret": ["export KEY={}", "the token {} leaked", "api key: {}"],
        "assigned secret": ["aws_secret_access_key = {}", "DB_PASSWORD={}", "auth_token: '{}'"],
    }
    # a fifth of the SSNs are labelled but never issued; a third of the secrets are assignments
    variant = {"ssn": ("labelled ssn", 0.2), "secret": ("assigned secret", 0.33)}
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for kind in PII_TYPES:
        for _ in range(per_type):
            form = kind
            if kind in variant and rng.random() < variant[kind][1]:
                form = variant[kind][0]
            v = value(form)
            out.append((rng.choice(templates[form]).format(v), [(kind, v)]))

    def near_miss() -> str:
        kind = rng.randrange(14)
        if kind == 0:  # a card number failing the Luhn check
            good = _luhn_complete("4" + digits(14))
            bad = good[:-1] + str((int(good[-1]) + 1) % 10)
            return f"Order {' '.join(bad[i : i + 4] for i in range(0, 16, 4))} shipped."
        if kind == 1:  # an IBAN with a wrong check digit
            good = _iban("DE", digits(18))
            return f"IBAN {good[:-1]}{(int(good[-1]) + 1) % 10} is invalid."
        if kind == 2:  # SSN areas that are never issued
            return f"Code {rng.choice(['000', '666'])}-{digits(2)}-{digits(4)} rejected."
        if kind == 3:  # dates with no birth context
            return f"The notes mature on {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2029."
        if kind == 4:
            return f"Filed {rng.choice(months)} {rng.randint(1, 28)}, 2021 with the SEC."
        if kind == 5:
            return f"Upgrade to version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{digits(1)}."
        if kind == 6:
            return f"Revenue was ${rng.randint(1, 999)},{digits(3)},{digits(3)} in 2023."
        if kind == 7:
            octets = [rng.randint(300, 999), *(rng.randint(1, 9) for _ in range(3))]
            return f"Node {'.'.join(map(str, octets))} failed."
        if kind == 8:
            return f"Table {rng.randint(1, 99)}: {digits(4)} {digits(4)} units sold."
        if kind == 9:
            return f"Use x[{rng.randint(1, 9)}::{rng.randint(1, 9)}] to slice."
        if kind == 10:  # a lower-case IBAN with a wrong check digit
            good = _iban("DE", digits(18)).lower()
            return f"iban {good[:-1]}{(int(good[-1]) + 1) % 10} bounced."
        if kind == 11:  # a never-issued SSN with no label
            never = rng.choice(["123-45-6789", f"666-{digits(2)}-{digits(4)}"])
            return f"Ticket {never} closed."
        if kind == 12:  # credential words, no credential
            return rng.choice(
                ["The password: field is required.", "Each token = one word.", "secret: none"]
            )
        return "Write to the team at support@localhost for help."

    for _ in range(per_type * 2):
        out.append((near_miss(), []))
    rng.shuffle(out)
    return out
