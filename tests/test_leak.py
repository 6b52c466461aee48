"""The leak test: personal data planted everywhere in an input never reaches any file written.

A BEIR collection carries a value of every type the governance stage supports (and the
formats that used to slip through: a whole PEM key, Stripe keys, JWTs, credential assignments,
lower-case and compact IBANs, a labelled never-issued SSN) in document ids, query ids, titles,
document text, query text and metadata fields, in the training and the test set. It goes
through ``embedtune run`` with redaction on, then ``registry add`` + ``promote``, ``index`` and
``search``. Every place a file can land is pointed into this test's folders (the embedding
cache, the temp folder, Hugging Face's caches, XDG's cache, the working directory), and the
real home caches, the system temp folder, the repository and the base model's folder are
watched for anything new.
Then every byte written, and everything printed or logged, is searched for every planted value
and its normalised forms. The input folder alone is exempt.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.testing import PII_TYPES
from tests.conftest import write_beir, write_train_set

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

# The body of a PEM private key: each line must vanish, not only the BEGIN line.
PEM_BODY = [
    "MIIEowIBAAKCAQEAzq7Hk2Xv9Rt4LmWp0aBcDeFgHiJkLmNoPqRsTuVwXyZ3QjKx",
    "Vt8Lq2Rn5Ws7Xp1Yb4Zc6Ad9Ef3Gh0Ij2Kl5Mn8Op1Qr4St7Uv0Wx3Yz6Ab9Cd2Ef",
    "Gh5Ij8Kl1Mn4Op7Qr0St3Uv6Wx9Yz2Ab5Cd8Ef1Gh4Ij7Kl0Mn3Op6Qr9St2Uv5+/",
    "Xw8Zy1Ba4Dc7Fe0Hg3Ji6Lk9Nm2Po5Rq8Ts1Vu4Xw7Zy0Ba3Dc6Fe9Hg2Ji5Lk==",
]
PEM = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *PEM_BODY, "-----END RSA PRIVATE KEY-----"])
JWT = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6Inp4cTcifQ"
    ".eyJzdWIiOiJ6cXVpbmN5LTQ0MTciLCJyb2xlIjoiYWRtaW4ifQ"
    ".Qk9nVXl6bTNfd0ZzS1ZwLWhYcjJMZ0N5dTZOa0U"
)
STRIPE = "sk_live_7Hq2Lx9Pw4Rt6Zy1Vb3Nm8Kd"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzqxLEAKKEY"
GITHUB = "ghp_Zq4Lx8Pw2Rt6Zy1Vb3Nm8KdJf5Hs7Gc9Ea0Tu"
AWS_KEY_ID = "AKIAZQ7LEAKTEST2X9Q4"
SLACK = "xoxb-7731-Zq9LeakSlackTok3n"
API_KEY = "sk-Zq8LxLeakOpenStyleKey4Pw2Rt6"
QUOTED = "Zq8LeakQuoted-Value77x"

# name → (type, value); the type says which normalised forms are searched for too
PLANTED: dict[str, tuple[str, str]] = {
    # ids (each makes its whole id a pseudonym)
    "doc id email": ("email", "zq.alice7@example.com"),
    "doc id iban": ("iban", "gb29nwbk60161331926819"),
    "doc id card": ("credit_card", "4556737586899855"),
    "query id ssn": ("ssn", "536-22-1987"),
    "query id phone": ("phone", "2125076680"),
    "query id ip": ("ip", "198.51.100.23"),
    # titles
    "title card": ("credit_card", "4539 1488 0343 6467"),
    "title email": ("email", "t.bergstrom42@hospital.org"),
    # document text
    "text dob": ("dob", "March 14, 1985"),
    "text pem": ("secret", PEM),
    "text stripe": ("secret", STRIPE),
    "text jwt": ("secret", JWT),
    "text aws assignment": ("secret", AWS_SECRET),
    "text github": ("secret", GITHUB),
    "text aws key id": ("secret", AWS_KEY_ID),
    "text slack": ("secret", SLACK),
    "text api key": ("secret", API_KEY),
    "text quoted assignment": ("secret", QUOTED),
    "text iban": ("iban", "GB82 WEST 1234 5698 7654 32"),
    "text ipv4": ("ip", "203.0.113.57"),
    "text ipv6": ("ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    "text email": ("email", "jane.roe@clinic-mail.org"),
    "text phone": ("phone", "(212) 507-6680"),
    "text ssn": ("ssn", "078-41-2296"),
    # query text
    "query labelled ssn": ("ssn", "123-45-6789"),
    "query iban lower": ("iban", "de89370400440532013000"),
    "query dob": ("dob", "03/14/1985"),
    "query phone": ("phone", "+44 20 7946 0958"),
    "query card": ("credit_card", "5425-2334-3010-9903"),
    "held iban lower spaced": ("iban", "nl91 abna 0417 1643 00"),
    "held query id dob": ("dob", "1962-07-09"),
    # metadata fields (never read, and so never written)
    "metadata email": ("email", "meta.owner9@example.org"),
    "metadata ssn": ("ssn", "219-09-9991"),
    "metadata secret": ("secret", "sk_live_Mt4Qa8Zr2Wx6Ev1Bn5Kc9Hj3"),
}
V = {name: value for name, (_, value) in PLANTED.items()}
NUMERIC = {"ssn", "credit_card", "phone", "iban", "dob"}


def _plant(train: Path, test: Path) -> None:
    """Put every planted value into the training and the test collection (ids stay joined)."""

    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    def write(path: Path, records: list[dict]) -> None:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))

    def rename(folder: Path, split: str, docs: dict[str, str], queries: dict[str, str]) -> None:
        corpus, qs = rows(folder / "corpus.jsonl"), rows(folder / "queries.jsonl")
        for r in corpus:
            r["_id"] = docs.get(r["_id"], r["_id"])
        for q in qs:
            q["_id"] = queries.get(q["_id"], q["_id"])
        write(folder / "corpus.jsonl", corpus)
        write(folder / "queries.jsonl", qs)
        qrels = folder / "qrels" / f"{split}.tsv"
        lines = qrels.read_text().splitlines()
        out = [lines[0]]
        for line in lines[1:]:
            q, d, s = line.split("\t")
            out.append(f"{queries.get(q, q)}\t{docs.get(d, d)}\t{s}")
        qrels.write_text("\n".join(out) + "\n")

    corpus = rows(train / "corpus.jsonl")
    corpus[3]["title"], corpus[3]["text"] = corpus[4]["title"], corpus[4]["text"]  # a duplicate
    corpus[10]["title"] = f"Card {V['title card']} holder"
    corpus[10]["text"] += f" Patient born {V['text dob']} was admitted."
    corpus[11]["text"] += f" key {PEM} end of key"
    corpus[12]["text"] += f" stripe {V['text stripe']} and token {JWT} here"
    corpus[13]["text"] += f" aws_secret_access_key = {AWS_SECRET}\nexport GH={GITHUB}"
    corpus[14]["text"] += (
        f" IBAN: {V['text iban']} login from {V['text ipv4']} and {V['text ipv6']}"
    )
    corpus[15]["text"] += f" mail {V['text email']} Phone: {V['text phone']}"
    corpus[16]["text"] += f" member SSN {V['text ssn']} on file"
    corpus[17]["title"] = f"from {V['title email']}"
    corpus[18]["metadata"] = {
        "owner": V["metadata email"],
        "tax": f"SSN {V['metadata ssn']}",
        "key": V["metadata secret"],
    }
    corpus[19]["text"] += f" id {AWS_KEY_ID} slack {SLACK} api {API_KEY} auth_token: '{QUOTED}'"
    write(train / "corpus.jsonl", corpus)
    queries = rows(train / "queries.jsonl")
    queries[8]["text"] += f" SSN: {V['query labelled ssn']}"
    queries[9]["text"] += f" iban {V['query iban lower']}"
    queries[17]["text"] += f" DOB: {V['query dob']}"
    queries[18]["text"] += f" phone {V['query phone']}"
    queries[19]["text"] += f" card number {V['query card']}"
    queries[20]["metadata"] = {"contact": V["metadata email"]}
    write(train / "queries.jsonl", queries)
    rename(
        train,
        "train",
        docs={"d3": f"doc-{V['doc id email']}", "d7": f"acct-{V['doc id iban']}"},
        queries={"q5": f"q-ssn-{V['query id ssn']}", "q6": f"call-{V['query id phone']}"},
    )
    # the held-out set: its ids reach the evaluation's run files and the index
    held = rows(test / "corpus.jsonl")
    held[2]["text"] += f" reach me at {V['text email']} or SSN: {V['query labelled ssn']}"
    held[5]["title"] = f"pay to {V['held iban lower spaced']}"
    write(test / "corpus.jsonl", held)
    rename(
        test,
        "test",
        docs={"d1": f"doc-{V['doc id email']}", "d4": f"card-{V['doc id card']}"},
        queries={
            "q1": f"q-ssn-{V['query id ssn']}",
            "q2": f"ip-{V['query id ip']}",
            "q3": f"dob-{V['held query id dob']}",
        },
    )


def _forms(kind: str, value: str) -> set[str]:
    """``value`` and the forms it could take in a file: without separators, digits only,
    its parts, JSON- and URL-escaped. Matched case-insensitively, so lower/upper case too."""
    forms = {value, re.sub(r"[\s\-.()/:]", "", value)}
    if kind in NUMERIC:
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 8:  # shorter runs of digits occur by chance (floats, hashes)
            forms.add(digits)
    if kind == "email":
        local = value.split("@")[0]
        forms |= {local, local.replace(".", "")}
    if kind == "secret":
        # a PEM key's body lines one by one and joined (its BEGIN/END lines are no secret),
        # a JWT's parts, a Stripe key without its prefix
        parts = re.split(r"[\n.]", value)
        forms |= {p for p in parts if len(p) >= 20 and not p.startswith("-----")}
        if value.startswith("-----BEGIN"):
            forms.add("".join(PEM_BODY))
        if value.startswith("sk_"):
            forms.add(value.split("_", 2)[2])
    for form in list(forms):
        escaped = json.dumps(form)[1:-1]  # "\n" for a newline
        forms |= {escaped, escaped.replace("/", "\\/"), urllib.parse.quote(form, safe="")}
    return {f for f in forms if len(f) >= 8}


NEEDLES = sorted(
    {
        (name, form.lower().encode())
        for name, (kind, value) in PLANTED.items()
        for form in _forms(kind, value)
    }
)


# In the repository, what people and their tools change while this test runs (sources, lint
# and type-check caches) is not watched: stray artefacts (.json, .npy, .safetensors ...) are.
REPO_SKIP_DIRS = {
    ".venv",
    ".git",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".import_linter_cache",
    "__pycache__",
}
SOURCE_SUFFIXES = {".py", ".pyi", ".md", ".toml", ".yaml", ".yml", ".txt", ".cfg", ".in", ".ini"}
# Anywhere: package installs and bytecode that other processes on the machine write meanwhile
# (a pip install into a venv in /tmp once matched a 9-digit needle in pandas' test bytecode).
# embedtune writes into none of them.
FOREIGN_DIRS = {"site-packages", "dist-packages", "__pycache__", "node_modules", ".git"}


def _files(root: Path, skip: tuple[Path, ...] = ()) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder) / d not in skip]
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _changed_since(roots: list[Path], since_ns: int, skip: tuple[Path, ...]) -> list[Path]:
    """The files under ``roots`` (a root may be a file) created, written, renamed or copied
    since ``since_ns``: their ctime is later (copy2 keeps an old mtime, not an old ctime)."""
    found, stack = [], [str(r) for r in roots]
    skipped = {str(p) for p in skip}
    while stack:
        top = stack.pop()
        try:
            if not os.path.isdir(top):
                st = os.stat(top, follow_symlinks=False)
                if st.st_ctime_ns >= since_ns:
                    found.append(Path(top))
                continue
            in_repo = top == str(REPO) or top.startswith(str(REPO) + os.sep)
            with os.scandir(top) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        name = entry.name
                        if (
                            entry.path in skipped
                            or name in FOREIGN_DIRS
                            or (in_repo and (name in REPO_SKIP_DIRS or name.endswith(".egg-info")))
                        ):
                            continue
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        if in_repo and Path(entry.name).suffix in SOURCE_SUFFIXES:
                            continue
                        if entry.stat(follow_symlinks=False).st_ctime_ns >= since_ns:
                            found.append(Path(entry.path))
        except OSError:  # removed while walking (another process)
            continue
    return found


def _hits(blob: bytes) -> list[str]:
    lowered = blob.lower()
    return sorted({name for name, needle in NEEDLES if needle in lowered})


def _redirect_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Point every cache, temp and working folder into ``tmp_path``; returns the folders
    that do not follow (a library that resolved its cache folder at import, a write to a
    fixed path), to be watched for anything new."""
    system_tmp = Path(tempfile.gettempdir())
    for var in (
        "EMBEDTUNE_CACHE",  # embeddings, LLM questions (conftest isolates it too)
        "TMPDIR",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_DATASETS_CACHE",
        "TRANSFORMERS_CACHE",
        "SENTENCE_TRANSFORMERS_HOME",
        "TORCH_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "MPLCONFIGDIR",
    ):
        folder = tmp_path / "env" / var.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(var, str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile re-reads TMPDIR
    assert tempfile.gettempdir() == os.environ["TMPDIR"]
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # a stray relative write lands here
    # huggingface_hub, for one, read HF_HOME when it was imported (before this test)
    home = Path.home()
    watched = [home / d for d in (".cache", ".config", ".local")] + [system_tmp, REPO]
    watched += [p for p in home.iterdir() if p.is_file()]
    return [w for w in watched if w.exists()]


def test_nothing_planted_reaches_any_file_written(
    tmp_path: Path,
    train_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    inputs = tmp_path / "input"
    train = write_train_set(inputs / "train")
    test = write_train_set(inputs / "held", n=30, split="test")
    _plant(train, test)
    # the needles are right: each value is in the input, as written there
    given = b"".join(p.read_bytes().lower() for p in _files(inputs))
    assert {name for name, needle in NEEDLES if needle in given} == set(PLANTED)

    # the base model's folder too: nothing may be cached beside it
    watched = [*_redirect_writes(tmp_path, monkeypatch), train_model_dir]
    skip = (tmp_path_factory.getbasetemp().parent,)  # pytest's (this test's is walked whole)
    since = time.time_ns() - 1_000_000_000  # a second's slack for coarse file-system clocks
    caplog.set_level(logging.DEBUG, logger="embedtune")
    out = tmp_path / "out"
    config = {
        "output": str(out / "run"),
        "data": {"train": str(train), "test": str(test)},
        "preset": "fast",
        "governance": {"redact": True},
        "train": {
            "base_model": str(train_model_dir),
            "batch_size": 8,
            "learning_rate": 1e-3,
            "device": "cpu",
            "passages": {"window": 12, "stride": 6},
        },
    }
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config))
    printed: list[str] = []

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        printed.append(result.output)
        return result.output

    cli("run", str(config_file))
    run = out / "run"
    govern = json.loads((run / "stages" / "govern.json").read_text())
    found = {t for report in govern["reports"].values() for t in report["types"]}
    assert found == set(PII_TYPES)  # every type was found, so every type was redacted
    registry = ["--registry", str(out / "registry")]
    report = str(run / "eval" / "report.json")
    version = cli("registry", "add", str(run / "model"), "--report", report, *registry).split()[1]
    cli("registry", "promote", version, "production", *registry)
    cli("registry", "list", *registry)
    cli("registry", "show", "production", *registry)
    index = ["--index", str(out / "index"), *registry]
    held = govern["data"]["test"]  # the redacted copy the run evaluated on
    cli("index", held, "--split", "test", "--version", "production", *index)
    assert "(passage" in cli("search", "topic2 number 2", "-k", "5", *index)

    written = [*_files(tmp_path, skip=(inputs,)), *_changed_since(watched, since, skip)]
    leaks: dict[str, list[str]] = {}
    for path in written:
        try:
            blob = path.read_bytes()
        except OSError:  # a watched file removed meanwhile
            continue
        for name in _hits(blob):
            leaks.setdefault(name, []).append(str(path))
    for name in _hits("\n".join([*printed, caplog.text]).encode()):
        leaks.setdefault(name, []).append("<printed or logged>")
    assert not leaks, json.dumps(leaks, indent=1)
    # what is searched holds the ids as written: the pseudonyms are found in the run files
    # and in LanceDB's binary data files (so their encoding can be searched byte by byte)
    pseudonyms = re.findall(
        rb"doc-[0-9a-f]{16}", (run / "redacted" / "test" / "corpus.jsonl").read_bytes()
    )
    assert len(pseudonyms) == 2
    for suffix in (".run", ".lance"):
        blob = b"".join(p.read_bytes() for p in written if p.suffix == suffix)
        assert all(alias in blob for alias in pseudonyms), suffix
    kinds = {p.suffix for p in written}
    assert {".safetensors", ".pt", ".npy", ".html", ".md", ".jsonl", ".manifest"} <= kinds


def test_scan_report_shows_a_personal_duplicate_id_as_its_pseudonym(tmp_path: Path) -> None:
    from embedtune.governance import ScanConfig, scan

    personal = f"doc-{V['doc id email']}"
    docs = [
        {"_id": personal, "title": "same", "text": "the same text"},
        {"_id": "d2", "title": "same", "text": "the same text"},
        {"_id": "d3", "title": "other", "text": "another text"},
    ]
    data = write_beir(tmp_path / "data", docs=docs, queries=[], qrels=[])
    result = scan(ScanConfig(data=str(data), output=str(tmp_path / "scan"), redact=True))
    (group,) = result.report["data"]["duplicates"]["examples"]
    assert personal not in group and "d2" in group
    assert result.types["email"].document_ids == [group[0]]
    for path in _files(tmp_path / "scan"):
        assert not _hits(path.read_bytes()), path
