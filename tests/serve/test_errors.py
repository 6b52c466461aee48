"""Bad requests: each answered with the right status in OpenAI's error shape; none hurts the
server. Also auth, limits, metrics, readiness and the batcher's failure isolation."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from embedtune.serve import ServeConfig, create_app
from embedtune.serve.batching import MicroBatcher, QueueFull
from embedtune.serve.metrics import Metrics
from tests.serve.conftest import API_KEY, ThreadServer

AUTH = {"Authorization": f"Bearer {API_KEY}"}
OK = {"model": "fin", "input": "revenue"}

# name, body (dict → JSON; bytes → sent as is), headers, status, error code (None: any)
CASES: list[tuple[str, Any, dict[str, str], int, str | None]] = [
    ("empty list", {"model": "fin", "input": []}, AUTH, 400, None),
    ("empty string", {"model": "fin", "input": ""}, AUTH, 400, "empty_input"),
    ("blank string in list", {"model": "fin", "input": ["a", "  "]}, AUTH, 400, "empty_input"),
    ("10,000 inputs", {"model": "fin", "input": ["a"] * 10_000}, AUTH, 400, "too_many_inputs"),
    ("a non-string", {"model": "fin", "input": ["a", {"text": "b"}]}, AUTH, 422, None),
    ("a number", {"model": "fin", "input": 3.5}, AUTH, 422, None),
    ("token ids", {"model": "fin", "input": [[101, 2023, 102]]}, AUTH, 400, "unsupported_input"),
    ("invalid JSON", b'{"model": "fin", "input": [', AUTH, 400, "invalid_json"),
    ("JSON not an object", b'["fin"]', AUTH, 400, "invalid_json"),
    ("oversized body", {"model": "fin", "input": "x" * 70_000}, AUTH, 413, "request_too_large"),
    ("unknown model", {"model": "nope", "input": "a"}, AUTH, 404, "model_not_found"),
    ("model name with ../", {"model": "../../etc/passwd", "input": "a"}, AUTH, 404, None),
    ("missing model", {"input": "a"}, AUTH, 422, None),
    ("bad encoding_format", {**OK, "encoding_format": "hex"}, AUTH, 422, None),
    ("dimensions too large", {**OK, "dimensions": 33}, AUTH, 400, "invalid_dimensions"),
    ("dimensions zero", {**OK, "dimensions": 0}, AUTH, 400, "invalid_dimensions"),
    ("bad input_type", {**OK, "input_type": "title"}, AUTH, 422, None),
    ("missing key", OK, {}, 401, "invalid_api_key"),
    ("wrong key", OK, {"Authorization": "Bearer not-the-key"}, 401, "invalid_api_key"),
    ("not a bearer key", OK, {"Authorization": f"Basic {API_KEY}"}, 401, "invalid_api_key"),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_requests_get_the_right_status_and_openai_error_shape(
    server: ThreadServer,
    name: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = httpx.post(
        f"{server.url}/v1/embeddings",
        content=content,
        headers={"Content-Type": "application/json", **headers},
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    # the server still answers
    assert httpx.post(f"{server.url}/v1/embeddings", json=OK, headers=AUTH).status_code == 200


def test_the_openai_client_raises_its_own_errors(server: ThreadServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="fin", input="a")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="a")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="fin", input="a", dimensions=1000)
    assert caught.value.param == "dimensions"  # type: ignore[attr-defined]


def test_models_and_metrics_and_probes(server: ThreadServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    models = httpx.get(f"{server.url}/v1/models", headers=AUTH).json()
    by_id = {m["id"]: m for m in models["data"]}
    assert {"fin", "law", "general"} <= set(by_id)
    fin = by_id["fin"]
    assert fin["backend"] == "torch" and fin["dimensions"] == 32 and fin["shared_base"]
    assert fin["passages"]["window"] > 0 and fin["version"] in by_id
    httpx.post(f"{server.url}/v1/embeddings", json={**OK, "input": ["a", "b"]}, headers=AUTH)
    httpx.post(f"{server.url}/v1/embeddings", json={"model": "nope", "input": "a"}, headers=AUTH)
    text = httpx.get(f"{server.url}/metrics").text
    for metric in (
        'embedtune_requests_total{model="fin",status="200"}',
        'embedtune_errors_total{model="",type="model_not_found"}',
        'embedtune_request_seconds_bucket{le="0.1",model="fin"}',
        "embedtune_batch_inputs_bucket",
        "embedtune_batch_seconds_bucket",
        'embedtune_tokens_total{model="fin"}',
        "embedtune_queue_inputs",
    ):
        assert metric in text, metric
    assert "nope" not in text  # unknown names never become labels
    assert API_KEY not in text


def test_a_key_is_never_logged(
    serve_registry: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.serve.conftest import serve_thread

    caplog.set_level("DEBUG")
    with serve_thread(registry=serve_registry, models=["law"], api_keys=[API_KEY]) as running:
        for key in (API_KEY, "wrong-key-secret"):
            httpx.post(
                f"{running.url}/v1/embeddings",
                json={"model": "law", "input": "secret request text"},
                headers={"Authorization": f"Bearer {key}"},
            )
    out, err = capfd.readouterr()
    for leaked in (API_KEY, "wrong-key-secret", "secret request text"):
        assert leaked not in caplog.text + out + err


def test_not_ready_answers_503(serve_registry: Path) -> None:
    app = create_app(ServeConfig(registry=serve_registry))  # models load when the app starts
    client = TestClient(app)  # no lifespan: never started
    assert client.get("/readyz").status_code == 503
    answer = client.post("/v1/embeddings", json={"model": "fin", "input": "a"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "loading"
    assert answer.headers["retry-after"] == "1"
    with TestClient(app) as started:  # lifespan: loads in the background
        deadline = time.monotonic() + 30
        while started.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (
            started.post("/v1/embeddings", json={"model": "fin", "input": "a"}).status_code == 200
        )


def test_long_inputs_are_truncated_or_rejected(serve_registry: Path) -> None:
    long_text = "revenue " * 200  # > 64 tokens, the tiny model's limit
    for mode, status in (("truncate", 200), ("reject", 400)):
        app = create_app(
            ServeConfig(registry=serve_registry, models=["law"], long_inputs=mode), preload=True
        )
        with TestClient(app) as client:
            answer = client.post("/v1/embeddings", json={"model": "law", "input": long_text})
        assert answer.status_code == status
        if status == 200:
            assert answer.json()["usage"]["prompt_tokens"] == 64
        else:
            assert answer.json()["error"]["code"] == "input_too_long"


def test_full_queue_answers_429_with_retry_after(serve_registry: Path) -> None:
    app = create_app(
        ServeConfig(registry=serve_registry, models=["law"], max_queue=2, reload_interval_s=0),
        preload=True,
    )
    served = app.state.table.names["law"]
    release = threading.Event()
    original = served.worker._encode

    def slow(adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        release.wait(10)
        return original(adapter, texts, prompt)

    served.worker._encode = slow
    with ThreadServer(app) as running:
        url = f"{running.url}/v1/embeddings"
        results: list[int] = []

        def post(inputs: list[str]) -> None:
            results.append(httpx.post(url, json={"model": "law", "input": inputs}).status_code)

        first = threading.Thread(target=post, args=(["a"],))  # runs, blocked in the model
        first.start()
        time.sleep(0.3)
        second = threading.Thread(target=post, args=(["b", "c"],))  # waits in the queue
        second.start()
        time.sleep(0.3)
        refused = httpx.post(url, json={"model": "law", "input": ["d"]})
        release.set()
        first.join()
        second.join()
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert results == [200, 200]


def test_a_failing_batch_fails_only_its_requests() -> None:
    release = threading.Event()

    def encode(adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        release.wait(10)
        if "boom" in texts:
            raise ValueError("the model broke")
        return np.ones((len(texts), 4), dtype=np.float32)

    batcher = MicroBatcher(
        "test", encode, batch_tokens=1000, max_queue=10, wait_s=0, metrics=Metrics()
    )
    blocker = batcher.submit(None, "", ["first"], [3])
    time.sleep(0.1)  # the worker now runs "first" alone
    good = batcher.submit(None, "", ["ok", "fine"], [3, 3])
    bad = batcher.submit(None, "", ["boom"], [3])
    other_key = batcher.submit("adapter-b", "", ["ok"], [3])
    with pytest.raises(QueueFull):
        batcher.submit(None, "", ["x"] * 8, [3] * 8)
    release.set()
    assert blocker.result(5).shape == (1, 4)
    assert good.result(5).shape == (2, 4)
    with pytest.raises(RuntimeError):
        bad.result(5)
    assert other_key.result(5).shape == (1, 4)
    batcher.close()


def test_batches_never_mix_keys_and_respect_the_token_budget() -> None:
    seen: list[tuple[str | None, str, list[str]]] = []
    gate = threading.Event()

    def encode(adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        gate.wait(10)
        seen.append((adapter, prompt, list(texts)))
        return np.full((len(texts), 2), float(len(texts)), dtype=np.float32)

    batcher = MicroBatcher("t", encode, batch_tokens=20, max_queue=100, wait_s=0, metrics=Metrics())
    futures = [batcher.submit("a", "", ["warm"], [1])]
    time.sleep(0.1)
    for i in range(6):
        key = "a" if i % 2 == 0 else "b"
        futures.append(batcher.submit(key, "q: " if i == 4 else "", [f"t{i}", f"u{i}"], [5, 9]))
    gate.set()
    for future in futures:
        future.result(5)
    batcher.close()
    for adapter, prompt, texts in seen:
        indices = {int(t[1:]) for t in texts if t != "warm"}
        assert all(("a" if i % 2 == 0 else "b") == adapter for i in indices)
        assert all((prompt == "q: ") == (i == 4) for i in indices)
        # padded tokens of a forward pass: inputs x longest (9) stay within the budget
        assert len(texts) * 9 <= 20 or len(texts) == 1 or texts == ["warm"]


def test_a_batch_waits_for_as_many_requests_as_the_last_one_but_a_lone_client_never_waits() -> None:
    batches: list[list[str]] = []
    gate = threading.Event()

    def encode(adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        gate.wait(10)
        batches.append(list(texts))
        return np.zeros((len(texts), 2), dtype=np.float32)

    batcher = MicroBatcher(
        "w", encode, batch_tokens=1000, max_queue=100, wait_s=0.5, metrics=Metrics()
    )
    started = time.monotonic()
    gate.set()
    batcher.submit(None, "", ["alone"], [1]).result(5)
    assert time.monotonic() - started < 0.4  # one client, one request: no wait
    gate.clear()
    first = batcher.submit(None, "", ["j1"], [1])
    time.sleep(0.1)  # j1 runs (blocked); three more queue behind it
    rest = [batcher.submit(None, "", [f"j{i}"], [1]) for i in (2, 3, 4)]
    gate.set()
    for future in [first, *rest]:
        future.result(5)
    assert batches[-1] == ["j2", "j3", "j4"]
    # the last batch held three requests: the next one waits (up to 0.5 s) for company
    late = [batcher.submit(None, "", ["j5"], [1])]
    time.sleep(0.1)
    late.append(batcher.submit(None, "", ["j6"], [1]))
    for future in late:
        future.result(5)
    assert batches[-1] == ["j5", "j6"]
    batcher.close()
