"""A run as one self-contained HTML page (``OUTPUT/report.html``), in the evaluation's style:
the outcome, the test scores with intervals, per-query wins and losses, the training and dev
curves, what the tuning forgot, and the corpus's fragmentation."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from embedtune.evaluate.html import per_query_sections, score_sections
from embedtune.figures import Section, fragmentation, page, signed_bars, table, training_curves

__all__ = ["render_run_html"]


def _per_query(eval_dir: Path, test_data: str, split: str | None) -> dict[str, Any]:
    """system → metric → query → value, re-scored from the evaluation's run files."""
    from embedtune.corpus.load import load_beir
    from embedtune.retrieval.metrics import per_query
    from embedtune.retrieval.ranking import read_run

    qrels = load_beir(test_data, split, skip_bad=True).qrels
    return {
        run.stem: per_query(read_run(run), qrels, ["ndcg@10"]) for run in eval_dir.glob("*.run")
    }


def _outcome(settings: dict[str, Any]) -> Section:
    outcome = settings.get("outcome", {})
    verdict = "better" if outcome.get("better") else "not better"
    notes = "".join(f"<li>{escape(n)}</li>" for n in outcome.get("notes", []))
    dev = settings.get("dev", {})
    rows = [
        (name, f"{dev[name]['ndcg@10']:.4f}")
        for name in ("bm25", "base", "tuned")
        if "ndcg@10" in dev.get(name, {})
    ]
    cls = "good" if outcome.get("better") else "bad"
    body = (
        f"<p class={cls}>On dev the tuned model is {verdict} than the base model"
        f"{' and BM25' if outcome.get('better_than_bm25') else ''}.</p><ul>{notes}</ul>"
        + table(["dev", "nDCG@10"], rows)
    )
    return Section("Outcome on dev", body)


def _training(settings: dict[str, Any]) -> Section:
    training = settings.get("training", {})
    figure = training_curves(
        training.get("history", []),
        caption="The training loss as logged and dev nDCG@10 at each evaluation (the "
        "checkpoint kept is the best on dev).",
    )
    rows = [
        ("strategy", settings.get("strategy", "")),
        ("pairs", settings.get("pairs", "")),
        ("steps", training.get("steps", "")),
        ("seconds", training.get("seconds", "")),
        ("trainable weights", f"{training.get('trainable_parameters', 0):,}"),
        ("weights", f"{training.get('parameters', 0):,}"),
    ]
    return Section("Training", figure + table(["", "value"], rows, numeric=2))


def _forgetting(settings: dict[str, Any]) -> Section:
    probes = settings.get("forgetting", {}).get("probes", [])
    if not probes:
        return Section("Forgetting", "")
    items = [
        (
            Path(p["data"]).name,
            p["change"],
            "" if p.get("p") is None else f"p {p['p']:.3f}" + (" *" if p["p"] < 0.05 else ""),
        )
        for p in probes
    ]
    body = signed_bars(
        items,
        xlabel="probe nDCG@10 change (tuned − base)",
        caption="nDCG@10 on general collections the model did not train on, tuned minus "
        "base; p from a paired randomization test (* below 0.05).",
    )
    return Section("Forgetting (general collections)", body)


def _analysis(folder: Path) -> Section:
    path = folder / "analysis" / "analysis.json"
    if not path.is_file():
        return Section("The corpus and the tokenizer", "")
    analysis = json.loads(path.read_text(encoding="utf-8"))
    figure = fragmentation(
        analysis,
        caption="Words of the training corpus by the number of word pieces the base "
        "tokenizer splits them into, against general English.",
    )
    advice = "".join(f"<li>{escape(r)}</li>" for r in analysis.get("recommendations", []))
    return Section("The corpus and the tokenizer", f"{figure}<ul>{advice}</ul>")


def render_run_html(folder: Path, test_data: str, split: str | None) -> str:
    """The run's page from its artefacts: ``eval/``, ``model/embedtune.json``, ``analysis/``."""
    report = json.loads((folder / "eval" / "report.json").read_text(encoding="utf-8"))
    settings_file = folder / "model" / "embedtune.json"
    settings = json.loads(settings_file.read_text("utf-8")) if settings_file.is_file() else {}
    sections = [
        _outcome(settings),
        *score_sections(report),
        *per_query_sections(_per_query(folder / "eval", test_data, split)),
        _training(settings),
        _forgetting(settings),
        _analysis(folder),
    ]
    data = report["data"]
    return page(
        f"embedtune run: {folder.name}",
        f"Tested on {report['config']['data']} ({data['split']}): "
        f"{data['evaluated_queries']} judged queries.",
        sections,
    )
