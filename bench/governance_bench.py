"""PII detection: precision/recall per type on a generated labeled set, and findings per MB on
the real collections in ../shared/data (which should hold almost no personal data).

The labeled set uses a seed (101) that was never used while writing the detector; it is
generated once and scored once. Real-collection findings are printed with a little context so
a person can judge what fires; the values themselves are shown masked (digits → #).

    .venv/bin/python bench/governance_bench.py --out bench/out/governance.json
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from embedtune.governance import GovernanceConfig, ScanConfig, scan
from embedtune.governance.detect import Detector
from embedtune.testing import PII_TYPES, pii_examples

COLLECTIONS = {
    "finance10k/train": ("finance10k", ["train"]),
    "finance10k/test": ("finance10k", ["test"]),
    "mediqa2019-qa": ("mediqa2019-qa", ["train", "dev", "test"]),
    "cranfield": ("cranfield", ["test"]),
    "cacm": ("cacm", ["test"]),
}


def labeled(detector: Detector, seed: int, per_type: int) -> dict[str, dict[str, float]]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, labels in pii_examples(seed=seed, per_type=per_type):
        found = [(f.type, text[f.start : f.end]) for f in detector.find(text)]
        for kind, value in labels:
            hit = any(k == kind and (value in v or v in value) for k, v in found)
            tp[kind] += hit
            fn[kind] += not hit
        for kind, v in found:
            fp[kind] += not any(k == kind and (x in v or v in x) for k, x in labels)
    return {
        kind: {
            "precision": round(tp[kind] / max(1, tp[kind] + fp[kind]), 4),
            "recall": round(tp[kind] / max(1, tp[kind] + fn[kind]), 4),
            "tp": tp[kind],
            "fp": fp[kind],
            "fn": fn[kind],
        }
        for kind in PII_TYPES
    }


def real(data: Path, config: GovernanceConfig) -> dict[str, object]:
    from embedtune.governance.scan import load_collection

    out = {}
    for name, (folder, splits) in COLLECTIONS.items():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            scan_config = ScanConfig.from_governance(
                config, data=data / folder, output=Path(tmp) / "scan", splits=splits, skip_bad=True
            )
            report = scan(scan_config).to_dict()
            seconds = time.perf_counter() - start
            findings = [
                json.loads(line)
                for line in (Path(tmp) / "scan" / "findings.jsonl").read_text().splitlines()
            ]
        collection = load_collection(data / folder, splits, skip_bad=True)
        examples = []
        for f in findings[:25]:
            if f["record"] == "doc":
                doc = collection.corpus[f["id"]]
                text = doc.title if f["field"] == "title" else doc.text
            else:
                text = collection.queries[f["id"]]
            masked = re.sub(r"\d", "#", text[f["start"] : f["end"]])
            context = text[max(0, f["start"] - 30) : f["start"]].replace("\n", " ")
            examples.append(f"{f['type']}: …{context}[{masked}]")
        out[name] = {
            "megabytes": report["scanned"]["megabytes"],
            "found": report["found"],
            "per_megabyte": report["per_megabyte"],
            "by_type": {k: v["values"] for k, v in report["types"].items()},
            "seconds": round(seconds, 1),
            "examples": examples,
        }
        print(name, json.dumps(out[name], indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--per-type", type=int, default=200)
    parser.add_argument("--out", default="bench/out/governance.json")
    args = parser.parse_args()
    config = GovernanceConfig()
    detector = Detector(config)
    result = {
        "labeled": labeled(detector, args.seed, args.per_type),
        "real": real(Path(args.data), config),
    }
    print(json.dumps(result["labeled"], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
