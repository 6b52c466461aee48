"""Governance: detection quality on a labeled set, redaction modes, reports without values."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.corpus.load import load_beir
from embedtune.errors import ConfigError
from embedtune.governance import GovernanceConfig, ScanConfig, ScanResult, scan
from embedtune.governance.detect import Detector
from embedtune.testing import PII_TYPES, pii_examples
from tests.conftest import write_beir

runner = CliRunner()
EMAIL, CARD, SSN = "maria.lopez@hospital.org", "4111 1111 1111 1111", "536-22-1987"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(GovernanceConfig())


def test_precision_and_recall_per_type_on_a_labeled_set(detector: Detector) -> None:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, labels in pii_examples(seed=7, per_type=40):
        found = [(f.type, text[f.start : f.end]) for f in detector.find(text)]
        for kind, value in labels:
            if any(k == kind and (value in v or v in value) for k, v in found):
                tp[kind] += 1
            else:
                fn[kind] += 1
        for kind, v in found:
            if not any(k == kind and (value in v or v in value) for k, value in labels):
                fp[kind] += 1
    for kind in PII_TYPES:
        assert tp[kind] / (tp[kind] + fp[kind]) >= 0.95, (kind, tp[kind], fp[kind])
        assert tp[kind] / (tp[kind] + fn[kind]) >= 0.95, (kind, tp[kind], fn[kind])


def test_context_decides_birth_dates_and_bare_numbers(detector: Detector) -> None:
    def kinds(text: str) -> list[str]:
        return [f.type for f in detector.find(text)]

    assert kinds("DOB: 03/14/1985, filed 2021-12-31") == ["dob"]
    assert kinds("The notes mature on 03/14/2029.") == []
    assert kinds("Fax: 2127015165") == ["phone"]
    assert kinds("Revenue of 2127015165 dollars") == []
    assert kinds("card 4111 1111 1111 1112") == []  # fails Luhn


def test_user_patterns_and_config_errors() -> None:
    config = GovernanceConfig(types=[], patterns=[{"name": "mrn", "regex": r"\bMRN-\d{6}\b"}])
    found = Detector(config).find("chart MRN-123456 reviewed")
    assert [(f.type, f.start) for f in found] == [("mrn", 6)]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        GovernanceConfig(patterns=[{"name": "bad", "regex": "("}])
    with pytest.raises(ValueError, match="unknown type"):
        GovernanceConfig(types=["passport"])


def _planted(tmp_path: Path) -> Path:
    docs = [
        {"_id": "d1", "title": "Intake", "text": f"Reach the patient at {EMAIL} today."},
        {"_id": "d2", "title": "Billing", "text": f"Card {CARD} was charged; SSN {SSN}."},
        {"_id": "d3", "title": "Notes", "text": "Nothing personal in this one."},
        {"_id": "d4", "title": "Intake", "text": f"Second visit, same contact {EMAIL}."},
    ]
    queries = [
        {"_id": "q1", "text": f"who wrote from {EMAIL}"},
        {"_id": "q2", "text": "billing notes"},
        {"_id": "q3", "text": "anything personal"},
    ]
    qrels = [("q1", "d1", 1), ("q2", "d2", 1), ("q2", "d3", 1), ("q3", "d3", 1)]
    return write_beir(tmp_path / "data", "test", docs=docs, queries=queries, qrels=qrels)


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_mask_mode_reports_counts_not_values(tmp_path: Path) -> None:
    data = _planted(tmp_path)
    out = tmp_path / "scan"
    config = ScanConfig(data=str(data), splits=["test"], output=str(out), redact=True)
    result = scan(config)
    assert isinstance(result, ScanResult) and result.output == out
    email = result.types["email"]
    assert (email.values, email.documents, email.queries) == (3, 2, 1)
    assert (email.document_ids, email.query_ids) == (["d1", "d4"], ["q1"])
    assert result.types["credit_card"].values == 1 and result.types["ssn"].values == 1
    assert (result.documents, result.queries, result.found) == (4, 3, 5)
    assert result.documents_with_findings == 3 and result.queries_with_findings == 1
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.to_dict()))
    assert report["types"]["email"] == {
        "values": 3,
        "documents": 2,
        "queries": 1,
        "document_ids": ["d1", "d4"],
        "query_ids": ["q1"],
        "fields": {"doc.text": 2, "query.text": 1},
    }
    assert report["fields"] == {"doc.text": 4, "query.text": 1}
    # the report records the governance settings only, not the scan's paths
    assert report["settings"] == GovernanceConfig(redact=True).model_dump(mode="json")
    assert result.redaction is not None and result.redaction.mode == "mask"
    assert result.redaction.redacted_values == 5 and report["redaction"]["redacted_values"] == 5
    everything = _all_text(out)
    for value in (EMAIL, CARD, SSN):
        assert value not in everything
    assert result.redacted_data == out / "data"
    redacted = load_beir(out / "data", "test")
    assert redacted.corpus["d1"].text == "Reach the patient at [EMAIL] today."
    assert redacted.corpus["d2"].text == "Card [CREDIT_CARD] was charged; SSN [SSN]."
    assert redacted.queries["q1"] == "who wrote from [EMAIL]"
    assert redacted.manifest.extra["redaction"]["mode"] == "mask"
    with pytest.raises(ConfigError, match="already exists"):
        scan(config)


def test_scan_config_composes_the_governance_block(tmp_path: Path) -> None:
    governance = GovernanceConfig(redact=True, mode="drop", types=["email"])
    config = ScanConfig.from_governance(
        governance, data=tmp_path / "data", output=tmp_path / "out", splits=["test"]
    )
    assert config.data == str(tmp_path / "data") and config.splits == ["test"]
    assert config.settings() == governance.model_dump(mode="json")
    with pytest.raises(ValueError, match="Extra inputs"):
        ScanConfig(data="d", output="o", split="test")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown type"):
        ScanConfig(data="d", output="o", types=["passport"])


def test_hash_mode_maps_one_value_to_one_token_and_keeps_the_key_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _planted(tmp_path)

    def config(out: str) -> ScanConfig:
        return ScanConfig(
            data=str(data), splits=["test"], output=str(tmp_path / out), redact=True, mode="hash"
        )

    monkeypatch.delenv("EMBEDTUNE_REDACT_KEY", raising=False)
    with pytest.raises(ConfigError, match="EMBEDTUNE_REDACT_KEY"):
        scan(config("nokey"))
    assert not (tmp_path / "nokey").exists()
    secret = "s3cret-redaction-key-XYZ"
    monkeypatch.setenv("EMBEDTUNE_REDACT_KEY", secret)
    scan(config("a"))
    corpus = load_beir(tmp_path / "a" / "data", "test").corpus
    token = corpus["d1"].text.split()[-2]
    assert token.startswith("[EMAIL:") and token in corpus["d4"].text
    assert secret not in _all_text(tmp_path / "a") and EMAIL not in _all_text(tmp_path / "a")
    monkeypatch.setenv("EMBEDTUNE_REDACT_KEY", "another key")
    scan(config("b"))
    assert token not in load_beir(tmp_path / "b" / "data", "test").corpus["d1"].text


def test_drop_mode_drops_documents_queries_and_their_judgments(tmp_path: Path) -> None:
    result = scan(
        ScanConfig(
            data=str(_planted(tmp_path)),
            splits=["test"],
            output=str(tmp_path / "s"),
            redact=True,
            mode="drop",
        )
    )
    assert result.redaction is not None
    assert result.redaction.dropped_documents == 3
    assert result.redaction.dropped_queries == 1
    assert result.redaction.dropped_qrels == 2  # q1→d1 (both), q2→d2
    kept = load_beir(tmp_path / "s" / "data", "test")
    assert sorted(kept.corpus) == ["d3"]
    assert kept.qrels == {"q2": {"d3": 1}, "q3": {"d3": 1}}


def test_scan_cli_prints_counts_and_warns_without_redaction(tmp_path: Path) -> None:
    data = _planted(tmp_path)
    result = runner.invoke(app, ["scan", str(data), "--split", "test", "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "email" in result.output and "rerun with --redact" in result.output
    assert EMAIL not in result.output and not (tmp_path / "s" / "data").exists()
    findings = [json.loads(x) for x in (tmp_path / "s" / "findings.jsonl").read_text().splitlines()]
    assert {f["type"] for f in findings} == {"email", "credit_card", "ssn"}
    bad = runner.invoke(app, ["scan", str(data), "-o", str(tmp_path / "t"), "--mode", "shred"])
    assert bad.exit_code == 2 and "mode" in bad.output


def _rigged_ner(folder: Path, hf: Path, label: int) -> Path:
    """A token classifier whose head ignores its input and always says ``label``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(hf)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "O", 1: "B-PER", 2: "I-PER"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2},
    )
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(0.0)
        model.classifier.bias[label] = 8.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_names_come_only_from_a_local_ner_model(tmp_path: Path) -> None:
    from embedtune.testing import build_tiny_model

    text = "alice smith visited the ward"
    hf = build_tiny_model(tmp_path / "tiny", [text]).parent / "hf"
    everyone = Detector(
        GovernanceConfig(types=[], ner_model=str(_rigged_ner(tmp_path / "a", hf, 1)))
    )
    found = everyone.find(text)
    assert {f.type for f in found} == {"person"}
    assert [text[f.start : f.end] for f in found] == text.split()
    nobody = Detector(GovernanceConfig(types=[], ner_model=str(_rigged_ner(tmp_path / "b", hf, 0))))
    assert nobody.find(text) == []
    with pytest.raises(ConfigError, match="ner_model"):
        Detector(GovernanceConfig(ner_model=str(tmp_path / "missing")))


def test_run_stage_keeps_each_layout_and_scans_a_shared_folder_once(tmp_path: Path) -> None:
    from embedtune.governance.run_stage import govern_sources

    parent = tmp_path / "fin"
    write_beir(parent / "train", "train")
    write_beir(parent / "test", "test")
    shared = _planted(tmp_path)  # flat, holding the test split
    config = GovernanceConfig(redact=True)
    run = tmp_path / "run"
    split_layout = govern_sources(
        {"train": (str(parent), ["train"]), "test": (str(parent), ["test"])}, config, run
    )
    assert split_layout.redacted
    assert split_layout.data == {
        "train": str(run / "redacted" / "train"),
        "test": str(run / "redacted" / "test"),
    }
    assert load_beir(split_layout.data["test"], "test").qrels
    assert sorted(split_layout.reports) == ["test-test", "train-train"]
    run2 = tmp_path / "run2"
    one = govern_sources(
        {"train": (str(shared), ["test"]), "test": (str(shared), ["test"])}, config, run2
    )
    assert one.data["train"] == one.data["test"] == str(run2 / "redacted" / "train")
    assert list(one.reports) == ["train"]
    assert one.reports["train"].found == 5
    assert "[EMAIL]" in load_beir(one.data["test"], "test").queries["q1"]
    # the stage marker keeps the paths and each report's summary, as before
    marker = one.to_dict()
    assert marker["redacted"] is True and marker["data"] == one.data
    assert list(marker["reports"]["train"]) == ["scanned", "found", "types", "redaction"]
    saved = json.loads((run2 / "governance" / "train" / "report.json").read_text())
    assert marker["reports"]["train"]["types"] == saved["types"]


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yQIDAQABAoIBAQCqPp1Yx5vWdQmTg0bbCNtEwVTzXZwT2R9pSmvx\n"
    "-----END RSA PRIVATE KEY-----"
)


def test_a_pem_private_key_is_one_finding_redacted_whole(detector: Detector) -> None:
    from embedtune.governance.redact import redact_text

    text = f"deploy key:\n{PEM}\nrotate it yearly"
    found = detector.find(text)
    assert [(f.type, text[f.start : f.end]) for f in found] == [("secret", PEM)]
    assert redact_text(text, found, "mask") == "deploy key:\n[SECRET]\nrotate it yearly"
    # a block cut off before its END line (a passage boundary) still loses its body
    cut = "key " + PEM.rsplit("\n", 1)[0] + "\n\nnext section"
    assert redact_text(cut, detector.find(cut), "mask") == "key [SECRET]\n\nnext section"


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            "billing uses sk_live_4eC39HqLyjWDarjtT1zdp7dc now",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "secret",
        ),
        ("tests use sk_test_51H8xYzAbCdEfGhIjKlMnOp", "sk_test_51H8xYzAbCdEfGhIjKlMnOp", "secret"),
        ("restricted rk_live_9aBcDeFgHiJkLmNoPqRsTu", "rk_live_9aBcDeFgHiJkLmNoPqRsTu", "secret"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "secret",
        ),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG", "secret"),
        ('db_password: "correct horse battery"', "correct horse battery", "secret"),
        ("auth_token = 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "secret"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "secret",
        ),
        ("wire to de89 3704 0044 0532 0130 00 today", "de89 3704 0044 0532 0130 00", "iban"),
        ("wire to de89370400440532013000 today", "de89370400440532013000", "iban"),
        ("SSN: 123-45-6789", "123-45-6789", "ssn"),
        ("social security number 078-05-1120 on file", "078-05-1120", "ssn"),
    ],
)
def test_credentials_lowercase_ibans_and_labelled_ssns_are_found(
    detector: Detector, text: str, value: str, kind: str
) -> None:
    from embedtune.governance.redact import redact_text

    at = text.index(value)
    found = detector.find(text)
    assert any(f.type == kind and f.start <= at and at + len(value) <= f.end for f in found), found
    assert value not in redact_text(text, found, "mask")


def test_an_unlabelled_never_issued_ssn_is_not_reported(detector: Detector) -> None:
    assert detector.find("Order 123-45-6789 shipped.") == []
    assert detector.find("Code 000-12-3456 rejected.") == []


PERSONAL_DOC, PERSONAL_QUERY = "doc-alice@example.com", "q-bob.jones@example.org"


def _personal_ids(tmp_path: Path) -> Path:
    docs = [
        {"_id": PERSONAL_DOC, "title": "Intake", "text": "Routine visit."},
        {"_id": "d2", "title": "Notes", "text": "Nothing personal here."},
    ]
    queries = [
        {"_id": PERSONAL_QUERY, "text": "routine visits"},
        {"_id": "q2", "text": "notes"},
    ]
    qrels = [(PERSONAL_QUERY, PERSONAL_DOC, 1), ("q2", "d2", 1), ("q2", PERSONAL_DOC, 1)]
    return write_beir(tmp_path / "data", "test", docs=docs, queries=queries, qrels=qrels)


@pytest.mark.parametrize("mode", ["mask", "hash"])
def test_personal_ids_are_scanned_and_replaced_by_one_pseudonym_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("EMBEDTUNE_REDACT_KEY", "k3y")
    data = _personal_ids(tmp_path)
    out = tmp_path / "scan"
    result = scan(
        ScanConfig(data=str(data), splits=["test"], output=str(out), redact=True, mode=mode)
    )
    everything = _all_text(out)
    for personal in (PERSONAL_DOC, PERSONAL_QUERY, "alice@example.com", "bob.jones"):
        assert personal not in everything
    email = result.types["email"]
    assert (email.values, email.documents, email.queries) == (2, 1, 1)
    assert email.fields == {"doc.id": 1, "query.id": 1}
    assert result.report["fields"] == {"doc.id": 1, "query.id": 1}
    redacted = load_beir(out / "data", "test")
    (doc,) = [d for d in redacted.corpus if d != "d2"]
    (query,) = [q for q in redacted.queries if q != "q2"]
    assert doc.startswith("doc-") and query.startswith("query-")
    assert redacted.corpus[doc].text == "Routine visit."
    assert redacted.qrels == {query: {doc: 1}, "q2": {"d2": 1, doc: 1}}
    assert email.document_ids == [doc] and email.query_ids == [query]
    assert result.redaction is not None
    assert (result.redaction.pseudonymised_documents, result.redaction.pseudonymised_queries) == (
        1,
        1,
    )
    findings = (out / "findings.jsonl").read_text()
    assert doc in findings and query in findings
    if mode == "hash":  # keyed: another key, another pseudonym
        monkeypatch.setenv("EMBEDTUNE_REDACT_KEY", "other")
        again = scan(
            ScanConfig(
                data=str(data), splits=["test"], output=str(tmp_path / "b"), redact=True, mode=mode
            )
        )
        assert again.types["email"].document_ids != [doc]


def test_personal_ids_never_reach_a_report_without_redaction(tmp_path: Path) -> None:
    out = tmp_path / "scan"
    result = scan(ScanConfig(data=str(_personal_ids(tmp_path)), splits=["test"], output=str(out)))
    assert result.types["email"].values == 2
    assert "example.com" not in _all_text(out) and "example.org" not in _all_text(out)
    rows = [json.loads(x) for x in (out / "findings.jsonl").read_text().splitlines()]
    assert {(r["record"], r["field"], r["row"]) for r in rows} == {
        ("doc", "id", 0),
        ("query", "id", 0),
    }


def test_drop_mode_drops_records_with_personal_ids_and_their_judgments(tmp_path: Path) -> None:
    result = scan(
        ScanConfig(
            data=str(_personal_ids(tmp_path)),
            splits=["test"],
            output=str(tmp_path / "s"),
            redact=True,
            mode="drop",
        )
    )
    assert result.redaction is not None and result.redaction.dropped_qrels == 2
    kept = load_beir(tmp_path / "s" / "data", "test")
    assert sorted(kept.corpus) == ["d2"] and kept.qrels == {"q2": {"d2": 1}}
    assert "example.com" not in _all_text(tmp_path / "s")


def test_the_labelled_set_holds_the_new_formats() -> None:
    examples = pii_examples(seed=3, per_type=60)
    values = [v for _, labels in examples for _, v in labels]
    for marker in ("sk_live_", "eyJ", "-----BEGIN"):
        assert any(marker in v for v in values), marker
    assert any("aws_secret_access_key" in text and labels for text, labels in examples)
    never_issued = ("123-45-6789", "000-", "666-", "9")
    assert any(k == "ssn" and v.startswith(never_issued) for _, ls in examples for k, v in ls)
    assert any(v[:2].islower() and v[2:4].isdigit() for v in values)  # lowercase IBANs


def test_only_the_value_of_a_credential_assignment_is_redacted(detector: Detector) -> None:
    from embedtune.governance.redact import redact_text

    text = 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\ndb_password: "correct horse"'
    redacted = redact_text(text, detector.find(text), "mask")
    assert redacted == 'aws_secret_access_key = [SECRET]\ndb_password: "[SECRET]"'
