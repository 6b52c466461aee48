"""Replace detected values: a type tag, a keyed hash of the value, or the whole record."""

from __future__ import annotations

import hashlib
import hmac
import os

from embedtune.errors import ConfigError
from embedtune.governance.config import GovernanceConfig
from embedtune.governance.detect import Finding


def hash_key(config: GovernanceConfig) -> bytes:
    """The keyed-hash secret, from the environment only (it is never saved anywhere)."""
    key = os.environ.get(config.hash_key_env, "")
    if not key:
        raise ConfigError(
            f"governance.mode 'hash' needs a secret key in the environment variable "
            f"{config.hash_key_env}: export it (it is never written to any file)"
        )
    return key.encode("utf-8")


def redact_text(text: str, findings: list[Finding], mode: str, key: bytes | None = None) -> str:
    """``text`` with each finding replaced by ``[TYPE]`` (mask) or ``[TYPE:hash]`` (hash).

    The hash is an HMAC-SHA256 of type and value under a secret key, so one value maps to one
    token everywhere (joins and duplicates survive) but cannot be reversed without the key.
    """
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[last : f.start])
        tag = f.type.upper()
        if mode == "hash":
            if key is None:
                raise ValueError("hash mode needs a key")
            value = text[f.start : f.end]
            digest = hmac.new(key, f"{f.type}:{value}".encode(), hashlib.sha256).hexdigest()
            out.append(f"[{tag}:{digest[:12]}]")
        else:
            out.append(f"[{tag}]")
        last = f.end
    out.append(text[last:])
    return "".join(out)


PREFIXES = {"doc": "doc-", "query": "query-"}


def pseudonym(kind: str, record_id: str, key: bytes | None = None, length: int = 16) -> str:
    """The stand-in for a personal document or query id: ``doc-<hash>`` or ``query-<hash>``.

    The same id always gets the same pseudonym, so the corpus, queries and judgments still
    line up. With a key (``hash`` mode) it is an HMAC-SHA256 that cannot be confirmed without
    the key; without one (``mask`` mode) a plain SHA-256, which hides the id but lets anyone
    who guesses it confirm the guess.
    """
    message = f"{kind}-id:{record_id}".encode()
    if key is None:
        digest = hashlib.sha256(message).hexdigest()
    else:
        digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return PREFIXES[kind] + digest[:length]
