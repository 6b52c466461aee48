"""``embedtune`` commands. Thin: each parses options, calls one stage and prints the result."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from embedtune.cli.compare import compare_command
from embedtune.cli.monitor import monitor_app
from embedtune.cli.options import MiningEncoderOption, OverwriteOption, RegistryOption
from embedtune.cli.serve import serve_command
from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.run.config import merge_settings, read_yaml_mapping

if TYPE_CHECKING:
    from embedtune.registry import Registry

app = typer.Typer(
    name="embedtune",
    help="Adapt a general embedding model to your domain and prove it beats the base model "
    "and BM25 on held-out queries.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


# The global --quiet/--verbose (`embedtune -q train ...`), set by _global_options.
_output = {"quiet": False, "verbose": False}


@app.callback()
def _global_options(
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="only warnings, errors and results: no progress"),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="debug lines, and the libraries' own output and bars"),
    ] = False,
) -> None:
    if quiet and verbose:
        _fail("--quiet and --verbose: choose one")
    _output.update(quiet=quiet, verbose=verbose)


def _setup_logging(verbose: bool) -> None:
    # embedtune's own progress is one INFO line per stage and one bar per long step (DEBUG lines
    # too with --verbose, warnings only with --quiet); the libraries under it speak only on
    # errors unless --verbose. A command's own --verbose wins over the global --quiet.
    from embedtune.console import configure_output, log_handler

    logging.basicConfig(format="%(message)s", handlers=[log_handler(err_console)])
    if verbose or _output["verbose"]:
        configure_output("verbose")
    else:
        configure_output("quiet" if _output["quiet"] else "normal")


def _fail(message: str) -> None:
    # Plain text, not rich: an error must stay one line however narrow the terminal.
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code=2)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error["loc"])
        given = error.get("input")
        # the value given, when it is a short scalar: the user sees what was refused
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        parts.append(f"{where}: {error['msg']}{shown[:80]}")
    return "invalid option: " + "; ".join(parts)


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a stage; a user-fixable problem becomes one line on stderr and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except EmbedtuneError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        _fail(_validation_message(exc))
    except OSError as exc:  # e.g. an output folder that cannot be written
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}")


def _split_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _passages(window: int | None, stride: int | None) -> Any:
    """A passage override from --window/--stride; a window alone strides by half of it."""
    from embedtune.corpus.config import PassageConfig

    if window is None and stride is None:
        return None
    size = window or PassageConfig().window
    return PassageConfig(window=size, stride=stride or max(1, size // 2))


def print_report(report: dict[str, Any]) -> None:
    """The system × metric table with 95% intervals and significance marks."""
    from embedtune.evaluate.report import significance_marks

    systems = list(report["systems"])
    metrics = list(next(iter(report["systems"].values())))
    data = report["data"]
    table = Table(
        title=f"{report['config']['data']} · {data['split']} · "
        f"{data['evaluated_queries']} queries · {data['counts']['documents']} docs"
    )
    table.add_column("system")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for system in systems:
        cells = [
            f"{report['systems'][system][metric]:.3f}{significance_marks(report, system, metric)}"
            for metric in metrics
        ]
        table.add_row(system, *cells)
    console.print(table)
    console.print(
        "† significantly different from bm25, ‡ from the base model (paired "
        "randomization test, p < 0.05); 95% intervals in report.json/report.md"
    )
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")


@app.command()
def ingest(
    path: Annotated[
        Path, typer.Argument(help="BEIR folder, .jsonl/.csv file or folder of .txt/.md/.html files")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder to write")],
    fmt: Annotated[str, typer.Option("--format", help="auto|beir|jsonl|csv|folder")] = "auto",
    split: Annotated[
        str | None, typer.Option(help="BEIR split whose queries/qrels to keep")
    ] = None,
    id_field: Annotated[str, typer.Option(help="id field/column")] = "_id",
    title_field: Annotated[str, typer.Option(help="title field/column")] = "title",
    text_field: Annotated[str, typer.Option(help="text field/column")] = "text",
    skip_bad: Annotated[bool, typer.Option(help="skip (and count) bad records")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="also write passages.jsonl split by this model's tokenizer ('base' = default)"
        ),
    ] = None,
    window: Annotated[int | None, typer.Option(help="passage window in tokens")] = None,
    stride: Annotated[int | None, typer.Option(help="passage stride in tokens")] = None,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Read domain text, check it, and write corpus.jsonl + manifest.json (+ passages.jsonl)."""
    _setup_logging(verbose)
    from embedtune.corpus import IngestConfig, IngestResult
    from embedtune.corpus import ingest as run_ingest

    def build() -> IngestResult:
        config = IngestConfig.model_validate(
            {
                "path": str(path),
                "format": fmt,
                "split": split,
                "skip_bad": skip_bad,
                "fields": {"id": id_field, "title": title_field, "text": text_field},
                "output": str(output),
                "overwrite": overwrite,
                "model": model,
                "passages": _passages(window, stride),
            }
        )
        return run_ingest(config)

    result: IngestResult = _run(build)
    console.print(
        f"{result.documents} documents, {result.queries} queries, "
        f"{result.qrels} judgments → {output}"
    )
    if result.skipped:
        console.print(f"skipped: {result.skipped}")
    if result.duplicate_documents:
        console.print(
            f"exact duplicates: {result.duplicate_documents} documents in "
            f"{result.duplicate_groups} groups (kept)"
        )


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Argument(help="BEIR folder, e.g. ../shared/data/finance10k/test")],
    split: Annotated[str, typer.Option(help="qrels split to evaluate")] = "test",
    model: Annotated[str | None, typer.Option(help="tuned model folder (adds tuned-*)")] = None,
    base_model: Annotated[str, typer.Option(help="base model folder or 'base'")] = "base",
    systems: Annotated[
        str | None,
        typer.Option(
            help="comma list: bm25,base,base-maxp,base-hybrid,tuned,tuned-maxp,tuned-hybrid"
        ),
    ] = None,
    metrics: Annotated[str | None, typer.Option(help="comma list, e.g. ndcg@10,mrr@10")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="report folder")] = None,
    query_prompt: Annotated[str | None, typer.Option(help="prefix for queries")] = None,
    doc_prompt: Annotated[str | None, typer.Option(help="prefix for documents")] = None,
    window: Annotated[int | None, typer.Option(help="passage window (tokens)")] = None,
    stride: Annotated[int | None, typer.Option(help="passage stride (tokens)")] = None,
    fusion: Annotated[
        str,
        typer.Option(
            help="auto (dev where --model stored weights, else rrf) | rrf | weighted (weight "
            "chosen on --tune-data/--tune-split) | dev (the weights chosen on dev when "
            "--model was trained)"
        ),
    ] = "auto",
    tune_data: Annotated[
        str | None, typer.Option(help="train/dev data for the fusion weight")
    ] = None,
    tune_split: Annotated[str | None, typer.Option(help="its split (train or dev)")] = None,
    ignore_identical_ids: Annotated[
        bool, typer.Option(help="drop a retrieved doc whose id is the query id (BEIR)")
    ] = False,
    skip_bad: Annotated[bool, typer.Option(help="skip (and count) bad records")] = False,
    batch_size: int = 64,
    cache: Annotated[bool, typer.Option(help="cache document embeddings on disk")] = True,
    seed: int = 42,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Evaluate BM25, the base model and (with --model) a tuned model side by side."""
    _setup_logging(verbose)
    from embedtune.evaluate.config import EvalConfig
    from embedtune.retrieval.cache import default_cache_dir

    def build() -> Any:
        from embedtune.evaluate.evaluate import evaluate_models

        options: dict[str, Any] = {
            "data": str(data),
            "split": split,
            "model": model,
            "base_model": base_model,
            "systems": _split_list(systems),
            "query_prompt": query_prompt,
            "doc_prompt": doc_prompt,
            "passages": _passages(window, stride),
            "fusion": fusion,
            "tune_data": tune_data,
            "tune_split": tune_split,
            "ignore_identical_ids": ignore_identical_ids,
            "skip_bad": skip_bad,
            "batch_size": batch_size,
            "cache_dir": default_cache_dir() if cache else None,
            "seed": seed,
            "overwrite": overwrite,
        }
        if metrics:
            options["metrics"] = _split_list(metrics)
        config = EvalConfig.model_validate(options)
        return evaluate_models(config, output)

    result = _run(build)
    print_report(result.report)
    if output is not None:
        console.print(f"report: {output / 'report.md'}")


def _load_yaml(path: Path | None) -> dict[str, Any]:
    return {} if path is None else read_yaml_mapping(path)


def _ranks(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        lo, hi = (int(x) for x in value.split("-"))
    except ValueError:
        raise ConfigError(f"--ranks '{value}': use FIRST-LAST, e.g. 3-30") from None
    return [lo, hi]


@app.command()
def pairs(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder with a labeled split")] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="pairs folder to write (train --pairs reads it)")
    ] = Path("runs/pairs"),
    split: Annotated[str, typer.Option(help="qrels split to make pairs from")] = "train",
    dev_split: Annotated[
        str | None,
        typer.Option(help="dev split (default: 'dev' if present, else 15% of queries held out)"),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            help="a pairs file (JSONL/CSV: query, positive[, negatives]) to check and convert"
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="model for positives/negatives ('base')")] = "base",
    positive: Annotated[
        str | None, typer.Option(help="base | bm25: picks the passage of a relevant document")
    ] = None,
    negatives_from: Annotated[str | None, typer.Option(help="comma list: bm25,base")] = None,
    ranks: Annotated[str | None, typer.Option(help="rank range of negatives, e.g. 3-30")] = None,
    per_query: Annotated[int | None, typer.Option(help="hard negatives per pair")] = None,
    margin: Annotated[float | None, typer.Option(help="false-negative margin")] = None,
    cross_encoder: Annotated[str | None, typer.Option(help="local cross-encoder folder")] = None,
    mining: Annotated[
        str | None,
        typer.Option(
            help="candidates (the default: encode only each query's BM25 top "
            "--candidate-depth and its judged documents) | corpus (encode every passage)"
        ),
    ] = None,
    candidate_depth: Annotated[
        int | None, typer.Option(help="candidates: BM25 passages per training query")
    ] = None,
    mining_encoder: MiningEncoderOption = None,
    window: Annotated[int | None, typer.Option(help="passage window (tokens)")] = None,
    stride: Annotated[int | None, typer.Option(help="passage stride (tokens)")] = None,
    supervision: Annotated[
        str, typer.Option(help="labels (qrels) | weak (from the corpus alone, no labels)")
    ] = "labels",
    skip_bad: bool = False,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Build (query, positive, hard negatives) pairs with provenance and the dev split, from
    labeled data or label-free from the corpus (--supervision weak); `train --pairs DIR`
    trains on them."""
    _setup_logging(verbose)

    def build() -> Any:
        from embedtune.pairs.build import build_pairs
        from embedtune.pairs.config import BuildPairsConfig

        negatives: dict[str, Any] = {}
        for key, value in (
            ("sources", _split_list(negatives_from)),
            ("ranks", _ranks(ranks)),
            ("per_query", per_query),
            ("margin", margin),
            ("cross_encoder", cross_encoder),
        ):
            if value is not None:
                negatives[key] = value
        recipe: dict[str, Any] = {"negatives": negatives}
        for key, value in (
            ("positive", positive),
            ("mining", mining),
            ("candidate_depth", candidate_depth),
            ("mining_encoder", mining_encoder),
        ):
            if value is not None:
                recipe[key] = value
        if supervision not in {"labels", "weak"}:
            raise ConfigError(f"--supervision '{supervision}': choose labels or weak")
        options: dict[str, Any] = {
            "output": str(output),
            "overwrite": overwrite,
            "data": None if data is None else str(data),
            "pairs_file": None if from_file is None else str(from_file),
            "split": split,
            "dev_split": dev_split,
            "skip_bad": skip_bad,
            "supervision": supervision,
            "base_model": model,
            "pairs": recipe,
        }
        if window is not None or stride is not None:
            options["passages"] = _passages(window, stride)
        if data is None and from_file is None:
            raise ConfigError("give DATA (a BEIR folder with a labeled split) or --from-file")
        return build_pairs(BuildPairsConfig.model_validate(options))

    result = _run(build)
    console.print(
        f"{result.pairs} pairs, {result.dev_queries} dev queries → {output}"
        + (" (already built: reused)" if result.reused else "")
    )
    for key in ("negatives_per_pair", "filtered", "skipped"):
        if result.summary.get(key):
            console.print(f"{key}: {result.summary[key]}")


@app.command()
def train(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder with a labeled split")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="model folder to create")] = Path(
        "runs/model"
    ),
    split: Annotated[str, typer.Option(help="labeled split to train on")] = "train",
    dev_split: Annotated[
        str | None,
        typer.Option(help="dev split (default: 'dev' if present, else 15% of train held out)"),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="full | lora | layers | adapter | mlm")
    ] = None,
    supervision: Annotated[
        str | None, typer.Option(help="labels | weak (label-free, from the corpus alone)")
    ] = None,
    extend_vocab: Annotated[
        int | None, typer.Option(help="add the N costliest domain terms as tokens")
    ] = None,
    pairs_file: Annotated[
        Path | None,
        typer.Option(
            "--pairs", help="train on a pairs folder (from `embedtune pairs`) or a pairs file"
        ),
    ] = None,
    preset_name: Annotated[str, typer.Option("--preset", help="default | fast")] = "default",
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML with recipe fields")
    ] = None,
    base_model: Annotated[str | None, typer.Option(help="base model folder or 'base'")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr")] = None,
    loss: Annotated[str | None, typer.Option(help="mnrl | cached_mnrl")] = None,
    matryoshka: Annotated[str | None, typer.Option(help="comma list of dims, e.g. 384,128")] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu | cuda | cuda:N | mps (default: best available)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue from the last complete checkpoint")
    ] = False,
    mining: Annotated[
        str | None,
        typer.Option(
            help="candidates (the default: encode only each training query's BM25 top "
            "candidate_depth and its judged documents) | corpus (every passage)"
        ),
    ] = None,
    mining_encoder: MiningEncoderOption = None,
    dev_pool: Annotated[
        int | None,
        typer.Option(help="documents per dev query in the dev pool (default 30)"),
    ] = None,
    dev_pool_from: Annotated[
        str | None,
        typer.Option(
            help="bm25 (the default: the base model encodes only BM25's top dev_pool and the "
            "judged documents) | bm25+base (it also searches the whole dev corpus for its own "
            "top dev_pool)"
        ),
    ] = None,
    report_to: Annotated[
        str | None,
        typer.Option(
            help="comma list of experiment trackers: tensorboard (logs in DIR.work/checkpoints/"
            "runs), mlflow, trackio, wandb … (each configured by its own environment)"
        ),
    ] = None,
    skip_bad: bool = False,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Fine-tune the base model on labeled (or, with --supervision weak, corpus-made) pairs;
    the best dev checkpoint becomes DIR."""
    _setup_logging(verbose)

    def build() -> Any:
        from embedtune.corpus.pairs import read_pair_set
        from embedtune.run import fine_tune
        from embedtune.run.config import preset, stage_configs
        from embedtune.train.train import train_model as train_stage

        options = merge_settings(preset(preset_name), _load_yaml(config_file))
        for key, value in (
            ("strategy", strategy),
            ("supervision", supervision),
            ("extend_vocab", extend_vocab),
            ("base_model", base_model),
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("loss", loss),
            ("max_steps", max_steps),
            ("seed", seed),
            ("device", device),
            ("dev_pool", dev_pool),
            ("dev_pool_from", dev_pool_from),
        ):
            if value is not None:
                options[key] = value
        if report_to is not None:
            options["report_to"] = _split_list(report_to)
        for key, value in (("mining", mining), ("mining_encoder", mining_encoder)):
            if value is not None:  # pairs-stage settings: the recipe's `pairs:` section
                options["pairs"] = {**(options.get("pairs") or {}), key: value}
        if matryoshka:
            try:
                options["matryoshka_dims"] = [int(x) for x in matryoshka.split(",")]
            except ValueError:
                raise ConfigError(
                    f"--matryoshka '{matryoshka}': use dimensions like 384,128"
                ) from None
        if pairs_file is not None and pairs_file.is_dir():  # a pairs folder: train on it
            if data is not None:
                raise ConfigError("--pairs DIR already holds its data and dev split: drop DATA")
            if read_pair_set(pairs_file) is None:
                raise ConfigError(f"{pairs_file}: not a pairs folder (build it with `pairs`)")
            _, config = stage_configs(options, output=output, resume=resume)
            update = {"pairs_dir": str(pairs_file), "overwrite": overwrite}
            return train_stage(config.model_copy(update=update))
        return fine_tune(
            output,
            options,
            data=None if data is None else str(data),
            pairs_file=None if pairs_file is None else str(pairs_file),
            split=split,
            dev_split=dev_split,
            resume=resume,
            skip_bad=skip_bad,
            overwrite=overwrite,
        )

    result = _run(build)
    from embedtune.io import is_main_process

    if not is_main_process():  # another process of a torchrun job: rank 0 reports
        return
    settings = result.settings
    dev = settings.dev
    table = Table(title=f"dev ({settings.data['dev']['rule']})")
    for column in ("system", "nDCG@10", "MRR@10", "Recall@100"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, m in (("bm25", dev.bm25), ("base-maxp", dev.base), ("tuned-maxp", dev.tuned)):
        table.add_row(name, f"{m['ndcg@10']:.4f}", f"{m['mrr@10']:.4f}", f"{m['recall@100']:.4f}")
    console.print(table)
    for note in settings.outcome.notes:
        console.print(note if settings.outcome.better else f"[yellow]{note}[/]")
    console.print(f"model: {result.output}")


@app.command()
def analyze(
    data: Annotated[Path, typer.Argument(help="BEIR folder (ingest other formats first)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for analysis.json/html")],
    split: Annotated[str | None, typer.Option(help="split (for split subfolders)")] = None,
    model: Annotated[str, typer.Option(help="base model folder ('base' = default)")] = "base",
    window: Annotated[int | None, typer.Option(help="passage window in tokens")] = None,
    stride: Annotated[int | None, typer.Option(help="passage stride in tokens")] = None,
    top_terms: Annotated[int, typer.Option(help="fragmented domain terms to list")] = 30,
    skip_bad: Annotated[bool, typer.Option(help="skip (and count) bad records")] = False,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """How badly the base tokenizer fragments the corpus, against general English; document
    lengths against the model's limit; what to do about it."""
    _setup_logging(verbose)
    from embedtune.analyze import AnalyzeConfig, AnalyzeResult, analyze_corpus

    def build() -> AnalyzeResult:
        config = AnalyzeConfig(
            data=str(data),
            split=split,
            model=model,
            output=str(output),
            overwrite=overwrite,
            passages=_passages(window, stride),
            skip_bad=skip_bad,
            top_terms=top_terms,
        )
        return analyze_corpus(config)

    result: AnalyzeResult = _run(build)
    corpus, ref = result.corpus, result.reference
    table = Table(title=f"{data} · vocabulary gap")
    for column in ("", "corpus", "general English"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("tokens per word", f"{corpus.tokens_per_word:.3f}", f"{ref.tokens_per_word:.3f}")
    table.add_row("words in 3+ pieces", f"{corpus.share_3plus:.1%}", f"{ref.share_3plus:.1%}")
    table.add_row("words with [UNK]", f"{corpus.unk_share:.2%}", f"{ref.unk_share:.2%}")
    console.print(table)
    for term in result.top_terms[:10]:
        console.print(f"  {term.term} → {' '.join(term.tokens)}  ({term.count}×)")
    for line in result.recommendations:
        console.print(f"• {line}")
    console.print(f"report: {output / 'analysis.html'}")


@app.command()
def scan(
    data: Annotated[Path, typer.Argument(help="BEIR folder (ingest other formats first)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="new folder for the results")],
    split: Annotated[
        str | None, typer.Option(help="comma-separated splits whose queries/qrels to include")
    ] = None,
    redact: Annotated[
        bool, typer.Option(help="also write a redacted copy of the collection to OUTPUT/data")
    ] = False,
    mode: Annotated[str | None, typer.Option(help="mask | hash | drop (default mask)")] = None,
    types: Annotated[
        str | None,
        typer.Option(help="comma-separated: email,phone,ssn,credit_card,iban,ip,dob,secret"),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="YAML of governance settings (patterns, ner_model, ...)"),
    ] = None,
    skip_bad: Annotated[bool, typer.Option(help="skip (and count) bad records")] = False,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Find personal and regulated data; report counts and record ids (never values); redact.

    The key of --mode hash is read from $EMBEDTUNE_REDACT_KEY and never written anywhere.
    """
    _setup_logging(verbose)
    from embedtune.governance import GovernanceConfig, ScanConfig, ScanResult
    from embedtune.governance import scan as run_scan

    def build() -> ScanResult:
        settings = _load_yaml(config_file)
        settings.update(
            {k: v for k, v in {"mode": mode, "types": _split_list(types)}.items() if v is not None}
        )
        settings["redact"] = redact or bool(settings.get("redact"))
        # the YAML holds governance settings only: paths come from the command line
        governance = GovernanceConfig.model_validate(settings)
        config = ScanConfig.from_governance(
            governance,
            data=data,
            output=output,
            splits=_split_list(split) or [],
            skip_bad=skip_bad,
            progress=True,
            overwrite=overwrite,
        )
        return run_scan(config)

    result: ScanResult = _run(build)
    table = Table(title=f"{data} · {result.megabytes} MB scanned")
    for column in ("type", "values", "documents", "queries"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for kind, row in result.types.items():
        table.add_row(kind, str(row.values), str(row.documents), str(row.queries))
    console.print(table)
    redaction = result.redaction
    if redaction:
        console.print(
            f"redacted ({redaction.mode}) → {output / 'data'}: "
            f"{redaction.dropped_documents} documents, {redaction.dropped_queries} "
            f"queries and {redaction.dropped_qrels} judgments dropped"
            + (
                f"; personal ids replaced by pseudonyms: {redaction.pseudonymised_documents} "
                f"documents, {redaction.pseudonymised_queries} queries"
                if redaction.pseudonymised_documents or redaction.pseudonymised_queries
                else ""
            )
        )
    elif result.found:
        console.print("[yellow]personal data found[/]: rerun with --redact before training on it")
    console.print(f"report: {output / 'report.json'}")


@app.command("export")
def export_command(
    model: Annotated[str, typer.Argument(help="model folder ('base' = the default model)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="new folder for the export")],
    formats: Annotated[
        str, typer.Option(help="comma-separated: onnx, onnx-int8, torch-export, torchscript")
    ] = "onnx,onnx-int8,torch-export",
    eval_data: Annotated[
        str | None, typer.Option(help="BEIR data whose split checks int8 retrieval quality")
    ] = None,
    eval_split: Annotated[str, typer.Option(help="split of --eval-data")] = "test",
    no_eval: Annotated[
        bool, typer.Option("--no-eval", help="skip the int8 retrieval check (recorded)")
    ] = False,
    overwrite: OverwriteOption = False,
    verbose: bool = False,
) -> None:
    """Export to ONNX fp32/int8 and a torch.export program, each checked against PyTorch."""
    _setup_logging(verbose)

    def build() -> Any:
        from embedtune.export import ExportConfig, export_model

        config = ExportConfig.model_validate(
            {
                "model": model,
                "output": str(output),
                "overwrite": overwrite,
                "formats": _split_list(formats),
                "eval_data": eval_data,
                "eval_split": eval_split,
            }
        )
        if "onnx-int8" in config.formats and eval_data is None and not no_eval:
            raise ConfigError(
                "int8 is checked on retrieval quality: give --eval-data DATA [--eval-split "
                "SPLIT], or --no-eval to skip the check (export.json records that it was skipped)"
            )
        return export_model(config)

    result = _run(build)
    table = Table(title=f"export of {result.source} → {output}")
    for column in ("format", "file", "MB", "min cosine", "nDCG@10"):
        table.add_column(column, justify="left" if column in ("format", "file") else "right")
    ndcg = result.retrieval.ndcg_at_10 if result.retrieval is not None else {}
    if ndcg:
        table.add_row("pytorch", "", "", "", f"{ndcg['pytorch']:.4f}")
    for name, file in result.files.items():
        check = result.parity.get(name)
        cosine = None if check is None else check.min_cosine
        table.add_row(
            name,
            file,
            f"{result.sizes[name] / 1e6:.1f}",
            f"{cosine:.6f}" if cosine is not None else "",
            f"{ndcg[name]:.4f}" if name in ndcg else "",
        )
    console.print(table)
    int8 = result.parity.get("int8")
    if int8 is not None and int8.eval is not None:
        console.print(f"[yellow]{int8.eval}[/]")
    if int8 is not None and int8.ok is False:
        _fail(
            f"int8 loses {int8.ndcg_drop:.4f} nDCG@10 against PyTorch, more than allowed; "
            f"the export is written to {output} but marked not ok in export.json"
        )


registry_app = typer.Typer(
    help="Immutable, content-addressed model versions with lineage; tags that move.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")
app.add_typer(monitor_app, name="monitor")


def _registry(root: Path) -> Registry:
    from embedtune.registry import Registry

    return Registry(root)


@registry_app.command("add")
def registry_add(
    path: Annotated[Path, typer.Argument(help="a model folder, or an export folder")],
    registry: RegistryOption = Path("registry"),
    report: Annotated[
        Path | None, typer.Option(help="eval report.json to keep with the version")
    ] = None,
    parent: Annotated[str | None, typer.Option(help="parent version (id or tag)")] = None,
    name: Annotated[str | None, typer.Option(help="a readable name")] = None,
    version: Annotated[
        str | None, typer.Option(help="for an export: its version (default: found by hash)")
    ] = None,
) -> None:
    """Add a model as a version (the same content twice is one version), or an export as a
    child of its version."""
    _setup_logging(False)
    if (path / "export.json").is_file():
        export = _run(lambda: _registry(registry).add_export(path, version))
        console.print(f"export {export.id} of version {export.version}", markup=False)
        return
    added = _run(lambda: _registry(registry).add(path, report=report, parent=parent, name=name))
    console.print(f"version {added.id} ({added.name})", markup=False, emoji=False)


@registry_app.command("list")
def registry_list(registry: RegistryOption = Path("registry")) -> None:
    """Every version, oldest first, with its tags and nDCG@10 of its eval report."""
    from rich.text import Text

    def cell(value: object) -> Text:
        # Read from disk: printed literally (Text: no markup, no emoji codes), one line each.
        text = str(value)
        return Text("".join(c if c.isprintable() else ascii(c)[1:-1] for c in text))

    versions = _run(_registry(registry).versions)
    table = Table(title=cell(f"registry {registry}"))
    for column in ("id", "name", "created", "tags", "base model", "tuned nDCG@10"):
        table.add_column(column)
    for v in versions:
        metrics = v.eval.metrics if v.eval is not None else {}
        best = next((metrics[s] for s in ("tuned-maxp", "tuned") if s in metrics), None)
        table.add_row(
            cell(v.id),
            cell(v.name),
            cell(v.created),
            cell(", ".join(v.tags)),
            cell((v.lineage.base_model or {}).get("name", "")),
            f"{best:.4f}" if best is not None else "",
        )
    console.print(table)


@registry_app.command("show")
def registry_show(
    version: Annotated[str, typer.Argument(help="id, id prefix or tag")],
    registry: RegistryOption = Path("registry"),
) -> None:
    """A version's full record: lineage, eval summary, tags, exports, model path."""
    record = _run(lambda: _registry(registry).show(version))
    # exclude_unset: a record is printed as stored, without keys its release did not write
    console.print_json(json.dumps(record.model_dump(exclude_unset=True)))


@registry_app.command("promote")
def registry_promote(
    version: Annotated[str, typer.Argument(help="id, id prefix or tag")],
    tag: Annotated[str, typer.Argument(help="tag to point at it, e.g. production")],
    registry: RegistryOption = Path("registry"),
) -> None:
    """Move a tag to a version (versions themselves never change)."""
    tags = _run(lambda: _registry(registry).promote(version, tag))
    console.print(f"{tag} → {tags[tag]}", markup=False, emoji=False)


@registry_app.command("diff")
def registry_diff(
    a: Annotated[str, typer.Argument(help="version (id, prefix or tag)")],
    b: Annotated[str, typer.Argument(help="version (id, prefix or tag)")],
    registry: RegistryOption = Path("registry"),
) -> None:
    """What differs between two versions: lineage, config, eval metrics."""
    console.print_json(json.dumps(_run(lambda: _registry(registry).diff(a, b)).model_dump()))


@app.command("index")
def index_command(
    data: Annotated[Path, typer.Argument(help="BEIR folder whose corpus to index")],
    version: Annotated[str, typer.Option(help="registry version (id, prefix or tag)")],
    index: Annotated[Path, typer.Option("--index", help="index folder")] = Path("index"),
    registry: RegistryOption = Path("registry"),
    split: Annotated[str | None, typer.Option(help="split (for split subfolders)")] = None,
    backend: Annotated[str, typer.Option(help="lancedb (embedded) | qdrant")] = "lancedb",
    url: Annotated[str | None, typer.Option(help="Qdrant server URL (else local mode)")] = None,
    name: Annotated[
        str, typer.Option(help="index name (LanceDB pointer / Qdrant alias)")
    ] = "passages",
    encoder: Annotated[str, typer.Option(help="torch | fp32 | int8 (an ONNX export)")] = "torch",
    ray_workers: Annotated[
        int, typer.Option(help="embed on Ray Data with N workers (the ray extra; 0: in process)")
    ] = 0,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address")] = None,
    keep: Annotated[
        int,
        typer.Option(
            help="tables of this name kept after the switch, the new one included "
            "(2: the replaced one too, for a rollback by hand; 0: keep all)"
        ),
    ] = 2,
) -> None:
    """Embed a corpus's passages with a registry version into a new table, then switch the
    index to it (search never sees a half-built index) and drop tables beyond --keep."""
    _setup_logging(False)

    def build() -> Any:
        from embedtune.index import Index, IndexConfig

        config = IndexConfig.model_validate(
            {
                "backend": backend,
                "path": str(index),
                "url": url,
                "name": name,
                "encoder": encoder,
                "ray_workers": ray_workers,
                "ray_address": ray_address,
                "keep": keep,
            }
        )
        return Index(config, _registry(registry)).build(data, split, version)

    built = _run(build)
    console.print(
        f"{built.name} → {built.table}: {built.passages} passages of "
        f"{built.documents} documents, {built.index}"
        + (f" (replaced {built.previous})" if built.previous else "")
        + (f"; dropped {len(built.dropped)} old table(s)" if built.dropped else "")
    )


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="what to look for")],
    index: Annotated[Path, typer.Option("--index", help="index folder")] = Path("index"),
    registry: RegistryOption = Path("registry"),
    backend: Annotated[str, typer.Option(help="lancedb | qdrant")] = "lancedb",
    url: Annotated[str | None, typer.Option(help="Qdrant server URL")] = None,
    name: Annotated[str, typer.Option(help="index name")] = "passages",
    k: Annotated[int, typer.Option("-k", help="documents to show")] = 10,
    version: Annotated[
        str | None, typer.Option(help="refuse unless the index was built with this version")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="refuse unless the index was built with this encoder")
    ] = None,
) -> None:
    """The top documents for a query (each scored by its best passage)."""
    _setup_logging(False)

    def find() -> Any:
        from embedtune.index import Index, IndexConfig

        config = IndexConfig.model_validate(
            {"backend": backend, "path": str(index), "url": url, "name": name, "k": k}
        )
        found = Index(config, _registry(registry))
        return found.search(query, config.k, version=version, encoder=encoder)

    for rank, hit in enumerate(_run(find), start=1):
        console.print(f"{rank:>3}  {hit.score:.4f}  {hit.doc_id}  (passage {hit.passage})")


app.command("serve")(serve_command)
app.command("compare")(compare_command)


@app.command("run")
def run_command(
    config_file: Annotated[
        Path, typer.Argument(help="run YAML: output, data, preset, train, eval")
    ],
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="start over in place of an existing run folder (instead of resuming it)",
        ),
    ] = False,
    verbose: bool = False,
) -> None:
    """ingest → pairs → train → evaluate in one command; rerun to resume where it stopped."""
    _setup_logging(verbose)

    def build() -> Any:
        from embedtune.run import run_pipeline
        from embedtune.run.config import load_run_config

        return run_pipeline(load_run_config(config_file), overwrite=overwrite)

    result = _run(build)
    if result.report is not None:  # None on the helper processes of a torchrun job
        print_report(result.report)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("runs/demo"),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="start over instead of resuming runs/demo")
    ] = False,
    verbose: bool = False,
) -> None:
    """The main job on the embedded default: code search over Python's standard library.

    Builds the dataset from this interpreter's own stdlib source (nothing is downloaded), then
    runs ingest → pairs → train (fast preset) → evaluate: BM25, the packaged all-MiniLM-L6-v2
    and the tuned model on the held-out packages. Rerun to resume an interrupted demo.
    """
    _setup_logging(verbose)

    def build() -> Any:
        from embedtune.outputs import replacing

        with replacing(output, overwrite):  # the data is rebuilt inside the new folder too
            return _demo(output)

    result = _run(build)
    print_report(result.report)
    console.print(f"report: {result.output / 'eval' / 'report.md'}; model: {result.model}")


def _demo(output: Path) -> Any:
    """The stdlib dataset inside the demo folder, then the run on it."""
    from embedtune.corpus.stdlib import build_stdlib_dataset
    from embedtune.run import run_pipeline
    from embedtune.run.config import RunConfig

    manifest = build_stdlib_dataset(output / "data", **DEMO_SIZES)
    console.print(
        f"stdlib code-search data (Python {manifest['python']}, sha256 "
        f"{manifest['dataset_sha256'][:12]}): {json.dumps(manifest['counts'])}"
    )
    data = str(output / "data")
    config = RunConfig.model_validate(
        {
            "output": str(output),
            "preset": "fast",
            "data": {"train": data, "train_split": "train", "test": data, "test_split": "test"},
        }
    )
    return run_pipeline(config)


# Sizes that keep the whole demo (pairs, training, evaluation) inside 10 minutes on 2 cores.
DEMO_SIZES = {"test_queries": 200, "test_docs": 600, "train_queries": 500, "train_docs": 500}


def _interrupted(argv: list[str]) -> str:
    """What Ctrl-C prints: for the resumable commands, the command line that resumes."""
    import shlex

    # the global options before the command are flags, so the first word is the command
    command = next((a for a in argv if not a.startswith("-")), None)
    if "--overwrite" in argv:  # the replaced output was put back; nothing to resume
        return "interrupted; the existing output was kept as it was"
    if command == "train":  # continues from its last complete checkpoint
        kept = [a for a in argv if a not in ("--resume", "--no-resume")]
        return f"interrupted; resume with: {shlex.join(['embedtune', *kept, '--resume'])}"
    if command in ("run", "demo", "compare"):  # finished stages (cells) are skipped
        same = shlex.join(["embedtune", *argv])
        return f"interrupted; resume with: {same} (finished stages are skipped)"
    return "interrupted"


def main() -> None:
    """Entry point that also turns Ctrl-C into one line and exit code 130."""
    try:
        app()
    except KeyboardInterrupt:  # outside a command (typer turns one inside into exit 130)
        code: int | str | None = 130
    except SystemExit as exc:
        if exc.code != 130:
            raise
        code = exc.code
    # Plain text, not rich: one line however narrow the terminal.
    sys.stderr.write(_interrupted(sys.argv[1:]) + "\n")
    sys.exit(code)


__all__ = ["ConfigError", "app", "main"]
