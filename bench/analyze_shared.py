"""Vocabulary gap of every collection in ../shared/data under the default model's tokenizer.

.venv/bin/python bench/analyze_shared.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from embedtune.analyze import AnalyzeConfig, analyze_corpus

COLLECTIONS = {
    "finance10k/train": ("finance10k", "train"),
    "finance10k/test": ("finance10k", "test"),
    "mediqa2019-qa": ("mediqa2019-qa", None),
    "cranfield": ("cranfield", None),
    "cacm": ("cacm", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="bench/out/analysis.json")
    args = parser.parse_args()
    rows = {}
    for name, (folder, split) in COLLECTIONS.items():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            config = AnalyzeConfig(
                data=str(Path(args.data) / folder),
                split=split,
                output=str(Path(tmp) / "a"),
                skip_bad=True,
            )
            report = analyze_corpus(config).to_dict()
            seconds = time.perf_counter() - start
        rows[name] = {
            "tokens_per_word": report["corpus"]["tokens_per_word"],
            "reference_tokens_per_word": report["reference"]["tokens_per_word"],
            "share_3plus": report["corpus"]["share_3plus"],
            "reference_share_3plus": report["reference"]["share_3plus"],
            "unk_share": report["corpus"]["unk_share"],
            "truncated_share": report["lengths"]["truncated_share"],
            "text_lost_share": report["lengths"]["text_lost_share"],
            "top_terms": [
                f"{t['term']} ({' '.join(t['tokens'])})" for t in report["top_terms"][:5]
            ],
            "seconds": round(seconds, 1),
        }
        print(name, json.dumps(rows[name]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
