"""``embedtune monitor``: reference profiles, drift checks, probe re-evaluation, canaries.

Every command is one-shot (for cron or a Kubernetes CronJob) and exits 0 when all is well,
1 on an alert (drift, a probe drop, a model change) and 2 on an error; imports stay inside
the commands so ``embedtune --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from embedtune.cli.options import OverwriteOption, RegistryOption

if TYPE_CHECKING:
    from embedtune.monitor import ModelSource, Profile

logger = logging.getLogger(__name__)

__all__ = ["monitor_app"]

monitor_app = typer.Typer(
    help="Watch a served model: drift of the query embeddings, probe re-evaluation, canaries "
    "(exit 0 ok, 1 alert, 2 error).",
    no_args_is_help=True,
)

VersionOption = Annotated[
    str | None, typer.Option("--version", help="registry version (id, prefix or tag)")
]
ModelOption = Annotated[
    Path | None, typer.Option("--model", help="a model folder (instead of --version)")
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="a profile folder, or a registry version whose newest profile to use "
        "(default: the newest profile of --version)",
    ),
]
WebhookOption = Annotated[
    str | None,
    typer.Option(
        "--webhook",
        envvar="EMBEDTUNE_MONITOR_WEBHOOK",
        help="POST the result as JSON to this URL on an alert ($EMBEDTUNE_MONITOR_WEBHOOK)",
    ),
]
AlwaysOption = Annotated[
    bool, typer.Option("--webhook-always", help="POST every result, not only alerts")
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="folder for the JSON and HTML report")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the full result as JSON")]


def _guard(fn: Any) -> Any:
    """Run a stage call: a user-fixable problem is one line and exit 2 (via the CLI's
    ``_run``); so is anything unexpected, because exit 1 must only ever mean an alert."""
    from embedtune.cli.main import _fail, _run

    def call() -> Any:
        try:
            return fn()
        except (typer.Exit, KeyboardInterrupt):
            raise
        except Exception as exc:
            from pydantic import ValidationError

            from embedtune.errors import EmbedtuneError

            if isinstance(exc, EmbedtuneError | ValidationError | OSError):
                raise
            logger.debug("unexpected error", exc_info=True)
            _fail(f"unexpected {type(exc).__name__}: {exc}")

    return _run(call)


def _setup() -> None:
    from embedtune.cli.main import _setup_logging

    _setup_logging(False)


def _registry(root: Path) -> Any:
    from embedtune.registry import Registry

    return Registry(root)


def _source(
    registry: Path, version: str | None, model: Path | None, variant: str = "torch"
) -> ModelSource:
    from embedtune.errors import ConfigError
    from embedtune.monitor import open_source

    if variant not in ("torch", "fp32", "int8"):
        raise ConfigError(f"variant {variant!r}: use torch, fp32 or int8")
    return open_source(
        registry=_registry(registry) if version is not None else None,
        version=version,
        model=model,
        variant=variant,
    )


def _profile(profile: str | None, registry: Path, version: str | None) -> Profile:
    from embedtune.errors import ConfigError
    from embedtune.monitor import load_profile, open_profile

    if profile is not None and (Path(profile) / "profile.json").is_file():
        return load_profile(profile)
    if profile is not None and Path(profile).exists():
        return load_profile(profile)  # a folder that is no profile: its own clear error
    name = profile or version
    if name is None:
        raise ConfigError("give --profile (a folder, or a registry version) or --version")
    return open_profile(registry=_registry(registry), version=name)


def _notify(url: str | None, always: bool, alert: bool, payload: dict[str, Any]) -> None:
    from embedtune.monitor.report import post_webhook

    if url is None or not (alert or always):
        return
    problem = post_webhook(url, payload)
    if problem is not None:  # the exit code still carries the verdict
        sys.stderr.write(f"warning: {problem}\n")


def _print(payload: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(line + "\n")


@monitor_app.command("profile")
def monitor_profile(
    queries: Annotated[
        Path, typer.Argument(help="reference queries: BEIR folder, .jsonl/.csv/.tsv, or .txt")
    ],
    corpus: Annotated[
        Path | None,
        typer.Option(help="BEIR folder whose corpus the model searches (top-1 OOD score)"),
    ] = None,
    version: VersionOption = None,
    model: ModelOption = None,
    registry: RegistryOption = Path("registry"),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="profile folder (default: beside --version)"),
    ] = None,
    alpha: Annotated[float, typer.Option(help="family-wise false-alarm rate per window")] = 0.01,
    tail_percentile: Annotated[
        float, typer.Option(help="low percentile of top-1 similarity that marks the tail")
    ] = 5.0,
    calibration_windows: Annotated[
        int, typer.Option(help="null windows drawn from held-out queries to calibrate")
    ] = 200,
    seed: int = 0,
    overwrite: OverwriteOption = False,
    as_json: JsonOption = False,
) -> None:
    """Build a reference profile: reference queries (and the corpus) embedded by a version."""
    _setup()

    def build() -> Any:
        from embedtune.monitor import DriftSettings, build_profile

        settings = DriftSettings(
            alpha=alpha,
            tail_percentile=tail_percentile,
            calibration_windows=calibration_windows,
            seed=seed,
        )
        if output is None and version is None:
            from embedtune.errors import ConfigError

            raise ConfigError("give --output FOLDER, or a registry --version to keep it beside")
        if output is not None:  # refused before the model loads
            from embedtune.outputs import check_output

            check_output(output, [queries, corpus, model], overwrite=overwrite)
        from embedtune.monitor.source import read_query_texts

        read_query_texts(queries)  # bad input fails before the model loads
        if corpus is not None:
            from embedtune.corpus.load import resolve_beir

            resolve_beir(corpus, None)
        source = _source(registry, version, model)
        return build_profile(
            queries,
            source,
            corpus=corpus,
            settings=settings,
            output=output,
            registry=_registry(registry) if version is not None else None,
            overwrite=overwrite,
        )

    profile, where = _guard(build)
    cal = profile.calibration
    _print(
        profile.model_dump(mode="json"),
        as_json,
        f"profile {profile.id} of {profile.model.get('name')} in {where}: "
        f"{profile.reference.queries} reference queries, calibrated alpha {cal.alpha:.4g} "
        f"(false alarms on {cal.windows} held-out windows: {cal.false_alarm_rate})",
    )


@monitor_app.command("check")
def monitor_check(
    window: Annotated[
        Path,
        typer.Argument(
            help="logged windows (DIR/<version id>, or DIR: the profiled version's folder), one "
            "window's .json/.npy, a .npy of vectors, or a queries file embedded now"
        ),
    ],
    profile: ProfileOption = None,
    version: VersionOption = None,
    model: ModelOption = None,
    registry: RegistryOption = Path("registry"),
    last: Annotated[int, typer.Option(help="logged windows merged (newest)", min=1)] = 1,
    alpha: Annotated[
        float | None, typer.Option(help="family-wise level (default: the profile's calibrated)")
    ] = None,
    tests: Annotated[
        str | None,
        typer.Option(
            help="comma-separated tests to run: tail, mmd, centroid (default: the profile's, "
            "all three)"
        ),
    ] = None,
    fail_on_shift: Annotated[
        bool,
        typer.Option(
            "--fail-on-shift",
            help="also exit 1 (and call the webhook) on a shift: queries that moved but that "
            "the corpus still answers",
        ),
    ] = False,
    output: OutputOption = None,
    overwrite: OverwriteOption = False,
    webhook: WebhookOption = None,
    webhook_always: AlwaysOption = False,
    as_json: JsonOption = False,
) -> None:
    """Test a window of queries against a profile: exit 0 ok (or shift), 1 drift, 2 error."""
    _setup()

    def check() -> Any:
        from embedtune.monitor import check_drift, write_check

        if output is not None:
            from embedtune.outputs import check_output

            check_output(output, [window, profile], overwrite=overwrite)
        chosen = None
        if tests is not None:
            from embedtune.errors import ConfigError

            chosen = [t.strip() for t in tests.split(",") if t.strip()]
            unknown = sorted(set(chosen) - {"tail", "mmd", "centroid"})
            if unknown or not chosen:
                raise ConfigError(f"--tests {tests!r}: use tail, mmd and/or centroid")
        loaded = _profile(profile, registry, version)
        target = window
        own = window / str(loaded.model.get("version"))
        if _is_log_dir(window) and not any(window.glob("*.json")) and own.is_dir():
            target = own  # the log root: the profiled version's own folder (by id)
        needs_model = not (target.suffix in (".npy", ".json") or _is_log_dir(target))
        source = None
        if needs_model:
            wanted = version or loaded.model.get("version")
            source = _source(registry, wanted if model is None else None, model)
        result, extras = check_drift(
            loaded, target, source=source, last=last, alpha=alpha, tests=chosen
        )
        if output is not None:
            write_check(loaded, result, extras, output, inputs=[window], overwrite=overwrite)
        return result

    result = _guard(check)
    payload = {"kind": "drift", **result.model_dump(mode="json")}
    fired = ", ".join(t.name for t in result.tests if t.rejected) or "none"
    _print(
        payload,
        as_json,
        f"{result.status}: {result.window.queries} queries, tests fired: {fired} "
        f"(alpha {result.alpha:.4g}; "
        + ", ".join(f"{t.name} p={t.p_value:.3g}" for t in result.tests)
        + ")",
    )
    alert = result.drift or (fail_on_shift and result.shift)
    _notify(webhook, webhook_always, alert, payload)
    raise typer.Exit(code=1 if alert else 0)


def _cache(given: Path | None) -> Path:
    from embedtune.retrieval.cache import default_cache_dir

    return given if given is not None else Path(default_cache_dir()) / "embeddings"


def _is_log_dir(path: Path) -> bool:
    return path.is_dir() and not (path / "queries.jsonl").is_file()


@monitor_app.command("probe")
def monitor_probe(
    data: Annotated[Path, typer.Argument(help="probe set: a BEIR folder with judgments")],
    split: Annotated[str, typer.Option(help="judgments to score (qrels/<split>.tsv)")] = "test",
    version: VersionOption = None,
    model: ModelOption = None,
    registry: RegistryOption = Path("registry"),
    history: Annotated[
        Path | None,
        typer.Option(help="JSON-lines history: its first run is the baseline; this run appended"),
    ] = None,
    margin: Annotated[float, typer.Option(help="nDCG@10 drop that alerts (if significant)")] = (
        0.02
    ),
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="document-embedding cache (default: $EMBEDTUNE_CACHE/embeddings)"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="re-encode the corpus")] = False,
    server: Annotated[
        str | None,
        typer.Option(
            help="embed through a running server instead (http://host:port, OpenAI API); "
            "--version still gives the tokenizer and passage window"
        ),
    ] = None,
    served_model: Annotated[
        str | None, typer.Option(help="the model name on --server (default: --version)")
    ] = None,
    output: OutputOption = None,
    overwrite: OverwriteOption = False,
    webhook: WebhookOption = None,
    webhook_always: AlwaysOption = False,
    as_json: JsonOption = False,
) -> None:
    """Re-run a probe set and compare with its baseline run: exit 0 ok, 1 alert, 2 error."""
    _setup()

    def probe() -> Any:
        from embedtune.io import write_json, write_text
        from embedtune.monitor import ProbeSettings, read_history, run_probe
        from embedtune.monitor.report import probe_html
        from embedtune.outputs import check_output, replacing

        if output is not None:
            check_output(output, [data, history], overwrite=overwrite)
        if history is not None:
            check_output(history, [data, model], exists_ok=True, option="--history")
            read_history(history)  # a malformed history fails before the model loads
        from embedtune.corpus.load import load_beir

        load_beir(data, split)  # likewise a missing or malformed probe set
        source = _source(registry, version, model)
        if server is not None:
            from embedtune.monitor.source import ServerEncoder, served_source

            name = served_model or version
            if name is None:
                from embedtune.errors import ConfigError

                raise ConfigError("--server needs --served-model (or --version)")
            source = served_source(source, ServerEncoder(server, name))
        result = run_probe(
            data,
            source,
            split=split,
            history=history,
            settings=ProbeSettings(margin=margin),
            registry_root=registry if version is not None else None,
            # a server's model can change behind its name (what a probe is for): no cache
            cache_dir=None if no_cache or server is not None else _cache(cache_dir),
        )
        if output is not None:
            runs = read_history(history) if history is not None else []
            page = probe_html(result.model_dump(mode="json"), runs or [result.model_dump()])
            with replacing(output, overwrite):
                output.mkdir(parents=True, exist_ok=True)
                write_json(output / "probe.json", result.model_dump(mode="json"))
                write_text(output / "probe.html", page)
        return result

    result = _guard(probe)
    payload = {"kind": "probe", **result.model_dump(mode="json", exclude={"per_query"})}
    _print(payload, as_json, f"{result.status}: {result.reason}")
    _notify(webhook, webhook_always, result.alert, payload)
    raise typer.Exit(code=1 if result.alert else 0)


@monitor_app.command("canary")
def monitor_canary(
    profile: ProfileOption = None,
    version: VersionOption = None,
    model: ModelOption = None,
    variant: Annotated[
        str, typer.Option(help="runtime now served: torch, fp32 or int8 (the version's export)")
    ] = "torch",
    registry: RegistryOption = Path("registry"),
    webhook: WebhookOption = None,
    webhook_always: AlwaysOption = False,
    as_json: JsonOption = False,
) -> None:
    """Re-embed the canary texts with the model served: exit 0 same, 1 model change, 2 error."""
    _setup()

    def canary() -> Any:
        from embedtune.errors import ConfigError
        from embedtune.monitor import run_canary

        if profile is None and version is None:
            raise ConfigError("give --profile (folder or version) and the served --version")
        loaded = _profile(profile, registry, version)
        return run_canary(loaded, _source(registry, version, model, variant))

    result = _guard(canary)
    payload = {"kind": "canary", **result.model_dump(mode="json")}
    _print(
        payload,
        as_json,
        f"{result.status}: min cosine {result.min_cosine:.6f} over {result.texts} canary texts "
        f"(allowed ≥ {result.allowed_min_cosine:.6f}, {result.parity_source})",
    )
    _notify(webhook, webhook_always, result.changed, payload)
    raise typer.Exit(code=1 if result.changed else 0)


@monitor_app.command("watch")
def monitor_watch(
    config: Annotated[
        Path, typer.Argument(help="a run config with a monitor: section, or a file of only that")
    ],
    cycles: Annotated[
        int | None,
        typer.Option(help="stop after this many cycles (default: run until interrupted)", min=1),
    ] = None,
    webhook: WebhookOption = None,
) -> None:
    """Run drift checks, probe re-runs and canaries on a schedule, as the config's monitor:
    section says; every result goes to OUTPUT/events.jsonl, alerts to the webhook. With
    --cycles: exit 1 if any alert was raised, else 0; 2 on an error."""
    _setup()

    def watch() -> Any:
        from embedtune.monitor.watch import Watcher
        from embedtune.run.config import load_watch_config

        settings = load_watch_config(config)
        if webhook is not None:
            settings = settings.model_copy(update={"webhook": webhook})
        watcher = Watcher(settings)
        logger.info(
            "watching %s every %g s (events: %s)",
            ", ".join(watcher.models()) or "no tags yet",
            settings.interval_s,
            watcher.output / "events.jsonl",
        )
        try:
            return watcher.run(cycles)
        except KeyboardInterrupt:
            return []

    alerts = _guard(watch)
    for event in alerts:
        sys.stdout.write(f"alert: {event.kind} {event.model}: {event.summary}\n")
    raise typer.Exit(code=1 if alerts and cycles is not None else 0)
