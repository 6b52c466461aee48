"""Find personal and regulated data in text, with presidio-analyzer's pattern recognizers.

presidio's ``AnalyzerEngine`` needs a spaCy pipeline (a model download); its recognizers do
not. Each type here is one recognizer called directly, plus what the engine would have added:
a score threshold, context words near the match, and non-overlapping results. Values are never
logged or returned beyond the ``Finding`` offsets the redactor needs.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass
from typing import Any, ClassVar

from embedtune.errors import ConfigError, require
from embedtune.governance.config import GovernanceConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One detected value: its type and character span (never the value itself)."""

    type: str
    start: int
    end: int
    score: float


@dataclass
class _Rule:
    """A recognizer and how to accept its results."""

    type: str
    recognizer: Any
    entity: str
    min_score: float = 0.5
    context: tuple[str, ...] = ()  # a result below min_score is kept only with one of these
    always_needs_context: bool = False


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
# Written-out dates, which presidio's DateRecognizer does not cover: "March 14, 1985",
# "14 March 1985".
_WORD_DATES = (
    rf"\b{_MONTH}\s+(?:[1-9]|0[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    rf"\b(?:[1-9]|0[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}\b",
)
# "aws_secret_access_key = ", "db_password: ", "AUTH_TOKEN=": a credential's name, then its value
# (its parts are bounded, so "a.a.a.a..." cannot make it backtrack for ever)
_ASSIGNED = (
    r"(?<![a-z0-9])(?:[a-z0-9]{1,30}[_.-]){0,5}(?:api[_-]?key|"
    r"secret(?:[_-]?(?:access[_-]?)?key)?|(?:access|auth|bearer|refresh|session)?[_-]?token|"
    r"password|passwd|pwd|passphrase|private[_-]?key|client[_-]?secret)"
    r"(?:[_.-][a-z0-9]{1,30}){0,3}['\"]?\s*[:=]\s*"
)
_PEM_HEADERS = r"(?:[ \t]*\r?\n[ \t]*[A-Za-z-]+:[^\n]*)*"  # Proc-Type:, DEK-Info:
# Well-known credential formats; `patterns` in the config adds the user's own. presidio
# compiles them case-insensitively, with "." matching newlines.
_SECRETS = {
    "aws access key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "github token": r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    "api key sk-": r"\bsk-[A-Za-z0-9_-]{20,}\b",
    "stripe key": r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}\b",
    "slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
    "jwt": r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    # the whole block: BEGIN line, base64 body, END line; cut off before its END line (at a
    # passage boundary), the BEGIN line and every base64 line after it
    "private key": (
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.{0,20000}?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        rf"|{_PEM_HEADERS}(?:\s*[A-Za-z0-9+/=]{{16,}})*)"
    ),
    "assigned secret": rf"(?i){_ASSIGNED}(?:\"[^\"\n]{{4,}}\"|'[^'\n]{{4,}}'|[^\s'\"<>,;]{{8,}})",
}
# of an assignment only the value is redacted ("password=[SECRET]"): this is its name
_ASSIGNMENT = re.compile(rf"(?i){_ASSIGNED}['\"]?")
DOB_CONTEXT = ("born", "birth", "dob", "d.o.b", "birthday")
PHONE_CONTEXT = ("phone", "tel", "fax", "call", "mobile", "cell")
# a written phone number: optional +country, then digit groups split by space, dot, dash or
# parentheses, at least three groups ("212-701-5165", "(212) 507-6680", "+44 20 7946 0958")
_PHONE_SHAPE = re.compile(
    r"\+?(?:\(\d{1,4}\)|\d{1,4})(?:(?:[ .\-]{1,2}|(?<=\))\s?)(?:\(\d{1,4}\)|\d{1,4})){2,5}"
)
SSN_CONTEXT = ("ssn", "social security", "ss#", "ssid")
# With an explicit label, an SSN-shaped value is reported even when presidio calls it invalid
# (never issued, like 123-45-6789): a missed number costs more than a needless mask.
SSN_LABELS = ("ssn", "social security", "ss#", "ss no")
_SSN_SHAPE = r"\b\d{3}([- .]?)\d{2}\1\d{4}\b"
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def _email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # tldextract's default fetches the public suffix list over the network; the snapshot
    # bundled in the wheel is used instead, so scanning never goes online.
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline(pattern_text.rsplit("@", 1)[-1]).suffix)

    return OfflineEmailRecognizer()


class _UpperCased:
    """Runs a recognizer on the ASCII-upper-cased text (same length, same offsets), for
    formats written either way but matched upper-case only, like IBANs."""

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Any:
        return self.recognizer.analyze(text.translate(_ASCII_UPPER), entities, nlp_artifacts)


def _rules(config: GovernanceConfig) -> list[_Rule]:
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    def make(kind: str) -> list[_Rule]:
        if kind == "email":
            return [_Rule(kind, _email_recognizer(), "EMAIL_ADDRESS")]
        if kind == "phone":  # python-phonenumbers validates the number for each region
            recognizer = PhoneRecognizer(supported_regions=tuple(config.phone_regions))
            return [_Rule(kind, recognizer, "PHONE_NUMBER", min_score=0.4)]
        if kind == "ssn":  # the dashed 3-2-4 form alone; bare 9-digit numbers need context
            labelled = PatternRecognizer(
                supported_entity="LABELLED_SSN", patterns=[Pattern("ssn shape", _SSN_SHAPE, 0.5)]
            )
            return [
                _Rule(kind, UsSsnRecognizer(), "US_SSN", context=SSN_CONTEXT),
                _Rule(
                    kind, labelled, "LABELLED_SSN", context=SSN_LABELS, always_needs_context=True
                ),
            ]
        if kind == "credit_card":  # Luhn-checked by the recognizer
            return [_Rule(kind, CreditCardRecognizer(), "CREDIT_CARD")]
        if kind == "iban":  # checksum-validated by the recognizer; lower-case ones too
            return [_Rule(kind, _UpperCased(IbanRecognizer()), "IBAN_CODE")]
        if kind == "ip":
            return [_Rule(kind, IpRecognizer(), "IP_ADDRESS", min_score=0.6)]
        if kind == "dob":  # a date is personal data here only next to born/DOB/birth
            extra = [Pattern(f"word date {i}", p, 0.6) for i, p in enumerate(_WORD_DATES)]
            dates = DateRecognizer(patterns=DateRecognizer.PATTERNS + extra)
            return [_Rule(kind, dates, "DATE_TIME", context=DOB_CONTEXT, always_needs_context=True)]
        if kind == "secret":
            patterns = [Pattern(name, regex, 1.0) for name, regex in _SECRETS.items()]
            secrets = PatternRecognizer(supported_entity="SECRET", patterns=patterns)
            return [_Rule(kind, secrets, "SECRET")]
        raise ConfigError(f"unknown governance type '{kind}'")

    rules = [rule for kind in config.types for rule in make(kind)]
    for custom in config.patterns:
        entity = custom.name.upper()
        pattern = Pattern(custom.name, custom.regex, 1.0)
        recognizer = PatternRecognizer(supported_entity=entity, patterns=[pattern])
        rules.append(
            _Rule(
                custom.name,
                recognizer,
                entity,
                context=tuple(w.lower() for w in custom.context),
                always_needs_context=bool(custom.context),
            )
        )
    return rules


class Detector:
    """Finds every configured type in a text; build once, call :meth:`find` per text."""

    def __init__(self, config: GovernanceConfig) -> None:
        require("presidio_analyzer", "governance")
        self.config = config
        self.rules = _rules(config)
        self.ner = _NerModel(config.ner_model) if config.ner_model else None

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in ``text``, in text order."""
        if not text:
            return []
        found: list[Finding] = []
        lowered = text.lower()
        for rule in self.rules:
            for result in rule.recognizer.analyze(text, [rule.entity], nlp_artifacts=None):
                if self._accept(rule, result, text, lowered):
                    start, end = result.start, result.end
                    if rule.type == "secret":
                        start, end = _assigned_value(text, start, end)
                    found.append(Finding(rule.type, start, end, result.score))
        if self.ner is not None:
            found.extend(self.ner.find(text))
        return _non_overlapping(found)

    def _accept(self, rule: _Rule, result: Any, text: str, lowered: str) -> bool:
        # "x[1::2]" is a valid IPv6 address to the pattern; real ones have 3+ groups
        if rule.type == "ip" and 0 < text.count(":", result.start, result.end) < 3:
            return False
        if rule.type == "phone" and not _phone_like(text, result.start, result.end):
            return False
        if rule.type == "phone" and not _PHONE_SHAPE.fullmatch(text[result.start : result.end]):
            # a bare run of digits ("20212025", "19,377 — 929") is a phone number to
            # phonenumbers but in filings and tables is almost always an amount or a year
            return self._has_context(lowered, result.start, PHONE_CONTEXT)
        if rule.always_needs_context or result.score < rule.min_score:
            if not rule.context:
                return False
            return self._has_context(lowered, result.start, rule.context)
        return True

    def _has_context(self, lowered: str, start: int, words: tuple[str, ...]) -> bool:
        before = lowered[max(0, start - self.config.context_window) : start]
        return any(_introduces(before, word) for word in words)


class _NerModel:
    """Names and places from a local token-classification model; nothing is downloaded."""

    LABELS: ClassVar[dict[str, str]] = {
        "PER": "person",
        "PERSON": "person",
        "LOC": "location",
        "GPE": "location",
    }

    def __init__(self, path: str) -> None:
        require("transformers", "eval")
        from pathlib import Path

        if not Path(path).is_dir():
            raise ConfigError(
                f"governance.ner_model: {path} is not a folder; give a local "
                "token-classification model (names/places are only found with one)"
            )
        from transformers import pipeline

        self.pipe = pipeline(
            "token-classification",
            model=path,
            tokenizer=path,
            aggregation_strategy="simple",
        )

    def find(self, text: str) -> list[Finding]:
        out = []
        for entity in self.pipe(text):
            label = re.sub(r"^[BI]-", "", str(entity["entity_group"])).upper()
            kind = self.LABELS.get(label)
            if kind and float(entity["score"]) >= 0.5:
                out.append(
                    Finding(kind, int(entity["start"]), int(entity["end"]), float(entity["score"]))
                )
        return out


def _assigned_value(text: str, start: int, end: int) -> tuple[int, int]:
    """The value's span alone when ``text[start:end]`` is an assignment ("token = abc...")."""
    name = _ASSIGNMENT.match(text, start, end)
    if name is None or name.end() >= end:
        return start, end
    opened = text[name.end() - 1]
    if opened in "'\"" and text[end - 1] == opened and end - 1 > name.end():
        end -= 1  # the closing quote stays
    return name.end(), end


def _phone_like(text: str, start: int, end: int) -> bool:
    """Rules out what python-phonenumbers accepts but text means otherwise."""
    value = text[start:end]
    if not 7 <= sum(c.isdigit() for c in value) <= 15:
        return False  # E.164 allows at most 15 digits: longer runs are cards or ids
    if start > 0 and text[start - 1] in ",.0123456789":
        return False  # the tail of a larger number, as in run-together table cells
    if end < len(text) and text[end].isdigit():
        return False
    return not re.match(r"\d\.\d", value)  # "0.123 0.456": decimals, not a number


def _introduces(before: str, word: str) -> bool:
    """``word`` occurs in ``before`` with no digit after it: "DOB: 03/14/1985, filed
    2021-12-31" makes the first date a birth date, not the second."""
    at = before.rfind(word)
    return at >= 0 and not any(c.isdigit() for c in before[at + len(word) :])


def _non_overlapping(found: list[Finding]) -> list[Finding]:
    """Where spans overlap keep the higher score, then the longer span (as presidio does)."""
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
