"""`embedtune monitor` end to end with tiny models and a real registry: exit codes (0 ok,
1 alert, 2 error), reports, the webhook against a local HTTP server, canary model change,
and the probe alert that fires for a worse version and never for the same one."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.monitor import append_window, load_profile
from embedtune.registry import Registry

runner = CliRunner()


def _degrade(model: Path, out: Path) -> Path:
    """A deliberately worse model: the same network with its word embeddings zeroed, so
    every text embeds alike (retrieval collapses to ties)."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model), device="cpu")
    st[0].auto_model.embeddings.word_embeddings.weight.data.zero_()
    st.save(str(out))
    return out


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, train_model_dir: Path, train_set: Path
) -> dict[str, object]:
    root = tmp_path_factory.mktemp("monitor")
    good = root / "good"
    shutil.copytree(train_model_dir, good)
    bad = _degrade(good, root / "bad")
    registry = Registry(root / "registry")
    registry.promote(registry.add(good, name="good").id, "production")
    registry.promote(registry.add(bad, name="bad").id, "worse")
    result = runner.invoke(
        app,
        [
            "monitor", "profile", str(train_set), "--corpus", str(train_set),
            "--version", "production", "--registry", str(root / "registry"),
            "--calibration-windows", "20",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"root": root, "registry": root / "registry", "data": train_set}


def _reg(setup: dict[str, object]) -> list[str]:
    return ["--registry", str(setup["registry"])]


def test_profile_is_kept_beside_the_version(setup: dict[str, object]) -> None:
    profiles = Registry(setup["registry"]).profiles("production")  # type: ignore[arg-type]
    assert len(profiles) == 1
    profile = load_profile(profiles[0])
    assert profile.id == profiles[0].name
    assert profile.model["version"] == Registry(setup["registry"]).resolve("production")  # type: ignore[arg-type]
    assert profile.corpus is not None and profile.corpus["mode"] == "max-passage"
    assert profile.reference.tail_threshold is not None and profile.canary


def test_check_of_reference_like_queries_exits_0_and_writes_a_report(
    setup: dict[str, object], tmp_path: Path
) -> None:
    queries = Path(str(setup["data"])) / "queries.jsonl"
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        ["monitor", "check", str(queries), "--profile", "production", *_reg(setup), "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok:")
    report = json.loads((out / "drift.json").read_text())
    assert report["status"] == "ok" and {t["name"] for t in report["tests"]} == {
        "tail", "mmd", "centroid",
    }  # fmt: skip
    page = (out / "drift.html").read_text()
    assert "<svg" in page and "http" not in page.replace("http-equiv", "")  # nothing fetched
    again = runner.invoke(
        app,
        ["monitor", "check", str(queries), "--profile", "production", *_reg(setup), "-o", str(out)],
    )
    assert again.exit_code == 2 and "--overwrite" in again.stderr


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()
    server.server_close()


def _logged_window(setup: dict[str, object], tmp_path: Path, off: int, sha: str | None) -> Path:
    """A logged window: reference-like vectors, ``off`` of them replaced by random ones."""
    registry = Registry(setup["registry"])  # type: ignore[arg-type]
    profile = load_profile(registry.profiles("production")[-1])
    rng = np.random.default_rng(0)
    base = profile.arrays.reference
    x = base[rng.choice(len(base), 80)] + 0.01 * rng.normal(size=(80, profile.dim))
    x[:off] = rng.normal(size=(off, profile.dim))
    logs, vid = tmp_path / "logs", profile.model["version"]
    append_window(logs, vid, x, model_sha256=sha or profile.model["sha256"])
    return logs / vid


def test_planted_shift_exits_1_and_posts_the_webhook(
    setup: dict[str, object], tmp_path: Path, hook: str
) -> None:
    window = _logged_window(setup, tmp_path, off=30, sha=None)
    result = runner.invoke(
        app,
        ["monitor", "check", str(window), "--profile", "production", *_reg(setup),
         "--webhook", hook, "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["status"] == "drift"
    assert len(_Hook.received) == 1
    payload = _Hook.received[0]
    assert payload["kind"] == "drift" and payload["drift"] is True


def test_no_webhook_without_an_alert_and_a_dead_hook_is_only_a_warning(
    setup: dict[str, object], tmp_path: Path, hook: str
) -> None:
    window = _logged_window(setup, tmp_path, off=0, sha=None)
    ok = runner.invoke(  # the log root: the profiled version's folder is found by its id
        app,
        ["monitor", "check", str(window.parent), "--profile", "production", *_reg(setup),
         "--webhook", hook],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert _Hook.received == []
    shifted = _logged_window(setup, tmp_path / "b", off=30, sha=None)
    dead = runner.invoke(
        app,
        ["monitor", "check", str(shifted), "--profile", "production", *_reg(setup),
         "--webhook", "http://127.0.0.1:9/none"],
    )  # fmt: skip
    assert dead.exit_code == 1 and "warning: webhook failed" in dead.stderr


def test_window_of_another_model_is_a_model_change_not_drift(
    setup: dict[str, object], tmp_path: Path
) -> None:
    window = _logged_window(setup, tmp_path, off=0, sha="f" * 64)
    result = runner.invoke(
        app, ["monitor", "check", str(window), "--profile", "production", *_reg(setup)]
    )
    assert result.exit_code == 2 and "model change" in result.stderr


def test_canary_same_model_then_model_change(setup: dict[str, object]) -> None:
    same = runner.invoke(
        app, ["monitor", "canary", "--profile", "production", "--version", "production",
              *_reg(setup)],
    )  # fmt: skip
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith("same:")
    changed = runner.invoke(
        app, ["monitor", "canary", "--profile", "production", "--version", "worse",
              *_reg(setup), "--json"],
    )  # fmt: skip
    assert changed.exit_code == 1, changed.output
    assert json.loads(changed.stdout)["status"] == "model-change"


def test_probe_alerts_for_the_worse_version_and_never_for_the_same(
    setup: dict[str, object], tmp_path: Path
) -> None:
    history = tmp_path / "probe.jsonl"
    common = [str(setup["data"]), "--split", "train", *_reg(setup), "--history", str(history)]
    first = runner.invoke(app, ["monitor", "probe", *common, "--version", "production"])
    assert first.exit_code == 0 and first.stdout.startswith("baseline:"), first.output
    same = runner.invoke(app, ["monitor", "probe", *common, "--version", "production"])
    assert same.exit_code == 0 and same.stdout.startswith("ok:"), same.output
    out = tmp_path / "report"
    worse = runner.invoke(
        app, ["monitor", "probe", *common, "--version", "worse", "-o", str(out), "--json"]
    )
    assert worse.exit_code == 1, worse.output
    result = json.loads(worse.stdout)
    assert result["status"] == "alert" and result["comparison"]["ndcg@10"]["high"] < 0
    lines = history.read_text().splitlines()
    assert len(lines) == 3 and [json.loads(x)["status"] for x in lines] == [
        "baseline", "ok", "alert",
    ]  # fmt: skip
    assert "<svg" in (out / "probe.html").read_text()


def test_a_shift_exits_0_unless_fail_on_shift(tmp_path: Path) -> None:
    from embedtune.monitor import DriftSettings, build_profile_from_embeddings, save_profile

    rng = np.random.default_rng(5)
    center = rng.normal(size=24)

    def cloud(n: int, scale: float, spread: float) -> np.ndarray:
        x = center * scale + spread * rng.normal(size=(n, 24))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    settings = DriftSettings(calibration_windows=10, permutations=300)
    profile = build_profile_from_embeddings(
        cloud(300, 1, 0.6), cloud(200, 1, 0.4), settings=settings
    )
    save_profile(profile, tmp_path / "profile")
    np.save(tmp_path / "window.npy", cloud(150, 4, 0.6))  # nearer the corpus, yet moved
    args = [
        "monitor",
        "check",
        str(tmp_path / "window.npy"),
        "--profile",
        str(tmp_path / "profile"),
    ]
    shifted = runner.invoke(app, args)
    assert shifted.exit_code == 0 and shifted.stdout.startswith("shift:"), shifted.output
    assert runner.invoke(app, [*args, "--fail-on-shift"]).exit_code == 1
    only_tail = runner.invoke(app, [*args, "--tests", "tail", "--json"])
    assert only_tail.exit_code == 0 and json.loads(only_tail.stdout)["status"] == "ok"


def test_probe_through_a_running_server_matches_the_registry_run(
    setup: dict[str, object], tmp_path: Path
) -> None:
    from tests.serve.conftest import serve_thread

    # the real server, on the probe's registry: what clients get is what is probed
    served_names = ["production", "worse"]
    with serve_thread(registry=setup["registry"], models=served_names, reload_interval_s=0) as (
        running
    ):
        url = running.url
        history = tmp_path / "probe.jsonl"
        common = [str(setup["data"]), "--split", "train", *_reg(setup), "--history", str(history),
                  "--version", "production"]  # fmt: skip
        assert runner.invoke(app, ["monitor", "probe", *common]).exit_code == 0
        served = runner.invoke(app, ["monitor", "probe", *common, "--server", url, "--json"])
        assert served.exit_code == 0, served.output
        result = json.loads(served.stdout)
        assert result["model"]["variant"] == "server:production"
        assert abs(result["comparison"]["ndcg@10"]["diff"]) < 1e-6  # same vectors, same ranks
        worse = runner.invoke(
            app, ["monitor", "probe", *common, "--server", url, "--served-model", "worse"]
        )
        assert worse.exit_code == 1 and worse.stdout.startswith("alert:"), worse.output


def _gauges(url: str) -> dict[tuple[str, str], float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        if family.name.startswith("embedtune_window_"):
            for sample in family.samples:
                found[(sample.name, sample.labels["version"])] = sample.value
    return found


def test_server_exports_live_window_gauges_of_profiled_versions(
    setup: dict[str, object],
) -> None:
    from embedtune.monitor.drift import window_stats
    from embedtune.monitor.live import profile_watches
    from embedtune.monitor.source import read_query_texts
    from tests.serve.conftest import serve_thread

    registry = Registry(setup["registry"])  # type: ignore[arg-type]
    profile = load_profile(registry.profiles("production")[-1])
    vid, worse = registry.resolve("production"), registry.resolve("worse")
    texts = read_query_texts(Path(str(setup["data"])) / "queries.jsonl")[:12]
    watches = profile_watches(registry, size=8)
    with serve_thread(
        watches, registry=setup["registry"], models=["production", "worse"], reload_interval_s=0
    ) as running:
        import httpx

        sent = []
        for i in range(0, len(texts), 4):  # three requests; the live window keeps the last 8
            answer = httpx.post(
                f"{running.url}/v1/embeddings",
                json={"model": "production", "input": texts[i : i + 4], "input_type": "query"},
            ).json()
            sent += [d["embedding"] for d in answer["data"]]
        httpx.post(  # documents are not queries: not in the window
            f"{running.url}/v1/embeddings",
            json={"model": "production", "input": texts[:3], "input_type": "passage"},
        )
        httpx.post(f"{running.url}/v1/embeddings", json={"model": "worse", "input": texts[:2]})
        gauges = _gauges(running.url)
    window = np.array(sent[-8:], dtype=np.float32)
    expected = window_stats(profile, window, profile.arrays.top1(window))
    assert gauges[("embedtune_window_queries", vid)] == 8
    for name in ("mean_cos_to_centroid", "mean_top1", "tail_rate"):
        assert gauges[(f"embedtune_window_{name}", vid)] == pytest.approx(
            getattr(expected, name), abs=1e-5
        )
    assert not any(version == worse for _, version in gauges)  # no profile, no gauges


def _events(output: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (output / "events.jsonl").read_text().splitlines()]


def test_watch_follows_the_config_checks_each_window_once_and_sees_a_tag_move(
    setup: dict[str, object], tmp_path: Path, hook: str
) -> None:
    import yaml

    registry = tmp_path / "registry"  # a copy: this test moves a tag
    shutil.copytree(Path(str(setup["registry"])), registry)
    logs = _logged_window(setup, tmp_path, off=0, sha=None).parent
    config = tmp_path / "watch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "monitor": {
                    "registry": str(registry), "models": ["production"], "windows": str(logs),
                    "window": 50, "interval_s": 0, "webhook": hook, "output": str(tmp_path / "m"),
                    "probe": {"data": str(setup["data"]), "split": "train", "every": 2},
                }
            }
        )
    )  # fmt: skip
    first = runner.invoke(app, ["monitor", "watch", str(config), "--cycles", "1"])
    assert first.exit_code == 0, first.output
    events = _events(tmp_path / "m")
    assert [(e["kind"], e["status"]) for e in events] == [("drift", "ok"), ("probe", "baseline")]
    assert (tmp_path / "m" / "production" / "drift" / "drift.html").is_file()

    _logged_window(setup, tmp_path, off=40, sha=None)  # a planted shift, then a restart
    second = runner.invoke(app, ["monitor", "watch", str(config), "--cycles", "1"])
    assert second.exit_code == 1 and "alert: drift production" in second.stdout, second.output
    events = _events(tmp_path / "m")
    assert [(e["kind"], e["status"], e["cycle"]) for e in events[2:]] == [("drift", "drift", 2)]
    assert events[2]["detail"]["window"]["queries"] == 80  # the new window only
    assert [p["kind"] for p in _Hook.received] == ["drift"]  # alerts only

    Registry(registry).promote("worse", "production")  # the tag moves to another model
    third = runner.invoke(app, ["monitor", "watch", str(config), "--cycles", "1"])
    assert third.exit_code == 1, third.output
    events = _events(tmp_path / "m")[3:]
    kinds = {e["kind"]: e for e in events}
    assert kinds["canary"]["status"] == "model-change" and kinds["canary"]["alert"]
    assert kinds["probe"]["status"] == "alert"  # the worse model, against the first baseline
    assert "no monitor profile" in kinds["error"]["summary"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("monitor:\n  windw: logs\n")
    bad = runner.invoke(app, ["monitor", "watch", str(broken), "--cycles", "1"])
    assert bad.exit_code == 2 and "monitor.windw" in bad.stderr, bad.output


def test_canary_of_the_onnx_exports_is_judged_by_their_recorded_parity(
    setup: dict[str, object], tmp_path: Path
) -> None:
    from embedtune.export import ExportConfig, export_model

    registry = Registry(shutil.copytree(Path(str(setup["registry"])), tmp_path / "registry"))
    export = tmp_path / "export"
    export_model(
        ExportConfig(
            model=str(registry.verified_path("production")),
            output=str(export),
            formats=["onnx", "onnx-int8"],
        )
    )
    registry.add_export(export)
    parity = json.loads((export / "export.json").read_text())["parity"]
    for variant in ("fp32", "int8"):
        result = runner.invoke(
            app, ["monitor", "canary", "--profile", "production", "--version", "production",
                  "--variant", variant, "--registry", str(registry.root), "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output  # the same weights on another runtime
        canary = json.loads(result.stdout)
        assert canary["status"] == "same"
        assert canary["parity_source"].startswith(f"recorded {variant} export parity")
        # the export's own parity check (less a little, for texts it never saw) is the bound
        bound = parity[variant]["min_cosine"] - 0.002
        assert abs(canary["allowed_min_cosine"] - bound) < 1e-9
        assert bound <= canary["min_cosine"] < 1 + 1e-6
    # the worse version's vectors, read through the same bound, are a model change
    worse = runner.invoke(
        app, ["monitor", "canary", "--profile", "production", "--version", "worse",
              "--registry", str(registry.root), "--json"],
    )  # fmt: skip
    assert worse.exit_code == 1 and json.loads(worse.stdout)["status"] == "model-change"
