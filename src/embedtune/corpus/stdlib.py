"""The embedded default domain: code search over the Python standard library.

Built at run time from the running interpreter's own standard-library source, so nothing is
downloaded or bundled. A function's docstring summary line is the query; the function (its code
and the rest of its docstring, without the summary) is the relevant document. Train and held-out
sets are split by top-level package, so no module leaks from one into the other.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import random
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedtune.io import write_json, write_jsonl, write_text

logger = logging.getLogger(__name__)

# Test suites, demos and vendored tooling are not library code.
EXCLUDED = {
    "test",
    "tests",
    "idlelib",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "site-packages",
    "__pycache__",
    "config-3",
    "venv",
    "pydoc_data",
    "__phello__",
}
HELD_OUT_SHARE = 0.3
MIN_SUMMARY_WORDS = 3
MAX_DOC_LINES = 80


@dataclass(frozen=True)
class Function:
    """One documented stdlib function."""

    id: str
    package: str
    qualname: str
    summary: str
    body: str


def _package_of(rel: Path) -> str:
    return rel.parts[0].removesuffix(".py")


def _is_held_out(package: str) -> bool:
    # A hash, not sorted order, so adding a package to a future Python moves nothing else.
    digest = hashlib.sha256(package.encode()).digest()
    return digest[0] / 256 < HELD_OUT_SHARE


def _document(
    source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef, docstring: str
) -> str:
    """The function's source with the docstring's summary line removed."""
    doc_node = node.body[0]
    start, end = node.lineno - 1, node.end_lineno or node.lineno
    if node.decorator_list:
        start = node.decorator_list[0].lineno - 1
    lines = source_lines[start:end]
    indent = " " * doc_node.col_offset
    rest = docstring.partition("\n")[2].strip()
    doc_start = doc_node.lineno - 1 - start
    doc_end = (doc_node.end_lineno or doc_node.lineno) - start
    replacement = (
        []
        if not rest
        else [
            f'{indent}"""',
            *[(indent + line) if line else "" for line in rest.splitlines()],
            f'{indent}"""',
        ]
    )
    lines = lines[:doc_start] + replacement + lines[doc_end:]
    if len(lines) > MAX_DOC_LINES:
        lines = lines[:MAX_DOC_LINES]
    base = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[base:] for x in lines).strip()


def _functions_in(path: Path, rel: Path, skipped: Counter[str]) -> list[Function]:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        skipped["unparsable_file"] += 1
        return []
    lines = source.splitlines()
    module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(child, clean=True)
                if docstring:
                    summary = docstring.strip().splitlines()[0].strip()
                    qualname = prefix + child.name
                    found.append(
                        Function(
                            f"{module}.{qualname}",
                            _package_of(rel),
                            qualname,
                            summary,
                            _document(lines, child, docstring),
                        )
                    )

    visit(tree, "")
    return found


def collect_functions(stdlib: Path | None = None) -> tuple[list[Function], Counter[str]]:
    """Every documented function of the standard library, cleaned.

    Cleaning: summaries that start with ``>>>`` (doctest examples) or are shorter than
    three words are dropped, and so is every function whose summary is not unique (an
    ambiguous query has no single right answer).
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    skipped: Counter[str] = Counter()
    functions: list[Function] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in EXCLUDED or part.startswith("config-3") for part in rel.parts):
            continue
        functions.extend(_functions_in(path, rel, skipped))
    kept: list[Function] = []
    for fn in functions:
        if fn.summary.startswith(">>>"):
            skipped["doctest_summary"] += 1
        elif len(fn.summary.split()) < MIN_SUMMARY_WORDS:
            skipped["short_summary"] += 1
        else:
            kept.append(fn)
    counts = Counter(fn.summary.lower() for fn in kept)
    unique = [fn for fn in kept if counts[fn.summary.lower()] == 1]
    skipped["duplicate_summary"] += len(kept) - len(unique)
    seen: set[str] = set()
    result = []
    for fn in unique:  # a name defined twice (e.g. platform branches) keeps its first body
        if fn.id in seen:
            skipped["duplicate_name"] += 1
            continue
        seen.add(fn.id)
        result.append(fn)
    return result, skipped


def _write_split(folder: Path, split: str, docs: list[Function], queries: list[Function]) -> None:
    write_jsonl(
        folder / "corpus.jsonl", ({"_id": fn.id, "title": fn.id, "text": fn.body} for fn in docs)
    )
    write_jsonl(
        folder / "queries.jsonl", ({"_id": f"q:{fn.id}", "text": fn.summary} for fn in queries)
    )
    write_text(
        folder / "qrels" / f"{split}.tsv",
        "query-id\tcorpus-id\tscore\n" + "".join(f"q:{fn.id}\t{fn.id}\t1\n" for fn in queries),
    )


def build_stdlib_dataset(
    output: str | Path,
    *,
    test_queries: int = 300,
    test_docs: int = 1500,
    train_queries: int = 1500,
    train_docs: int | None = None,
    seed: int = 13,
) -> dict[str, Any]:
    """Write ``output/train`` and ``output/test`` BEIR folders and a manifest; returns it.

    Each held-out query's function is in the test corpus, with other functions from the
    held-out packages as distractors, up to ``test_docs`` documents (``train_docs`` likewise
    for the training corpus; by default as many as the test corpus). Sizes keep the demo
    inside its time budget on two CPU cores.
    """
    functions, skipped = collect_functions()
    rng = random.Random(seed)
    held = [fn for fn in functions if _is_held_out(fn.package)]
    train = [fn for fn in functions if not _is_held_out(fn.package)]
    rng.shuffle(held)
    rng.shuffle(train)
    test_q = held[:test_queries]
    test_c = sorted(held[: max(test_docs, test_queries)], key=lambda fn: fn.id)
    train_q = train[:train_queries]
    train_size = test_docs if train_docs is None else train_docs
    train_c = sorted(train[: max(train_queries, train_size)], key=lambda fn: fn.id)
    out = Path(output)
    _write_split(out / "train", "train", train_c, train_q)
    _write_split(out / "test", "test", test_c, test_q)
    digest = hashlib.sha256()
    for fn in sorted(functions, key=lambda f: f.id):
        digest.update(f"{fn.id}\0{fn.summary}\0{fn.body}\0".encode())
    manifest = {
        "source": "python-stdlib",
        "python": sys.version.split()[0],
        "dataset_sha256": digest.hexdigest(),
        "seed": seed,
        "functions": len(functions),
        "skipped": dict(skipped),
        "packages": {
            "train": len({fn.package for fn in train}),
            "held_out": len({fn.package for fn in held}),
        },
        "counts": {
            "train": {"documents": len(train_c), "queries": len(train_q)},
            "test": {"documents": len(test_c), "queries": len(test_q)},
        },
    }
    write_json(out / "manifest.json", manifest)
    logger.info("stdlib dataset: %d functions, written to %s", len(functions), out)
    return manifest
