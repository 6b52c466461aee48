"""Settings of the governance stage: what to detect and how to redact it."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from embedtune.corpus.config import PathStr

# Structured types detected by default (presidio-analyzer's pattern recognizers, no spaCy).
TYPES = ("email", "phone", "ssn", "credit_card", "iban", "ip", "dob", "secret")
# Only through a local token-classification model the user supplies (``ner_model``).
NER_TYPES = ("person", "location")


class CustomPattern(BaseModel):
    """A user pattern, e.g. a medical record number or an internal API key format."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="type tag, e.g. mrn")
    regex: str
    context: list[str] = Field(
        default_factory=list, description="if given, one of these words must precede the match"
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class GovernanceConfig(BaseModel):
    """Scan for personal or regulated data; optionally redact it before anything else runs."""

    model_config = ConfigDict(extra="forbid")

    types: list[str] = Field(default_factory=lambda: list(TYPES))
    patterns: list[CustomPattern] = Field(default_factory=list)
    redact: bool = False
    mode: Literal["mask", "hash", "drop"] = "mask"
    # The keyed hash's key is a secret: it is read from this environment variable and never
    # written into a config, artefact or message.
    hash_key_env: str = "EMBEDTUNE_REDACT_KEY"
    ner_model: str | None = Field(
        default=None, description="local token-classification model folder for names/places"
    )
    context_window: int = Field(default=40, ge=1, description="characters searched for context")
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE", "FR", "CA", "IN"])

    def settings(self) -> dict[str, Any]:
        """The governance settings alone (no paths), as recorded in a scan's report."""
        return self.model_dump(mode="json", include=set(GovernanceConfig.model_fields))

    @field_validator("types")
    @classmethod
    def _types_known(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TYPES]
        if unknown:
            raise ValueError(f"unknown type(s) {unknown}; choose from {', '.join(TYPES)}")
        return list(dict.fromkeys(value))


class ScanConfig(GovernanceConfig):
    """One scan: the BEIR folder to read, the folder to write, and every `GovernanceConfig`
    setting (what to detect, whether and how to redact).

    Attributes:
        data: BEIR folder (or a parent holding ``<split>/``); ingest other formats first.
        splits: Splits whose queries and judgments are scanned (and redacted) with the corpus;
            all must live in one folder. Empty: the corpus alone.
        output: New folder for ``report.json``, ``findings.jsonl`` and, with ``redact``, the
            redacted collection in ``output/data``; never inside ``data``.
        overwrite: Replace an existing ``output`` (else it is refused).
        skip_bad: Skip (and count) bad records instead of failing.
        progress: Show a progress bar over the fields scanned.
    """

    data: PathStr = Field(description="BEIR folder (or a parent holding <split>/)")
    splits: list[str] = Field(
        default_factory=list, description="splits whose queries/qrels to include"
    )
    output: PathStr = Field(description="new folder for the results")
    overwrite: bool = Field(default=False, description="replace an existing output")
    skip_bad: bool = False
    progress: bool = False

    @classmethod
    def from_governance(
        cls,
        governance: GovernanceConfig,
        *,
        data: str | os.PathLike[str],
        output: str | os.PathLike[str],
        splits: list[str] | None = None,
        skip_bad: bool = False,
        progress: bool = False,
        overwrite: bool = False,
    ) -> ScanConfig:
        """A scan of ``data`` with the settings of a run config's ``governance:`` block."""
        return cls.model_validate(
            {
                **governance.settings(),
                "data": data,
                "output": output,
                "splits": list(splits or []),
                "skip_bad": skip_bad,
                "progress": progress,
                "overwrite": overwrite,
            }
        )
