"""Hot reload under load (a moved tag, no failed request) and a server killed mid-load."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from embedtune.registry import Registry
from tests.serve.conftest import TEXTS, free_port, serve_thread, wait_ready
from tests.serve.test_embeddings import offline


def _load(url: str, model: str, stop: threading.Event, out: list[tuple[int, str, list]]) -> None:
    """Requests back to back until ``stop``: (status, answering model, first vector)."""
    with httpx.Client(timeout=30) as client:
        i = 0
        while not stop.is_set():
            texts = TEXTS[i % 3 : i % 3 + 2]
            try:
                answer = client.post(f"{url}/v1/embeddings", json={"model": model, "input": texts})
            except httpx.TransportError as exc:
                out.append((-1, type(exc).__name__, []))
                continue
            body = answer.json()
            if answer.status_code == 200:
                out.append((200, body["model"], [i % 3, body["data"][0]["embedding"]]))
            else:
                out.append((answer.status_code, body["error"]["message"], []))
            i += 1


def test_a_moved_tag_is_served_without_restart_and_no_request_fails(registry_copy: Path) -> None:
    registry = Registry(registry_copy)
    fin, law = registry.resolve("fin"), registry.resolve("law")
    with serve_thread(registry=registry_copy, models=["fin"], reload_interval_s=0.1) as running:
        stop = threading.Event()
        results: list[tuple[int, str, list]] = []
        clients = [
            threading.Thread(target=_load, args=(running.url, "fin", stop, results))
            for _ in range(4)
        ]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        registry.promote(law, "fin")  # fin now points at the law adapter
        deadline = time.monotonic() + 20
        while not any(r[1] == f"fin@{law}" for r in results[-20:]):
            assert time.monotonic() < deadline, "the moved tag was not picked up"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join()
        listed = httpx.get(f"{running.url}/v1/models").json()["data"]
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:3]
    answered = [r[1] for r in results]
    assert {f"fin@{fin}", f"fin@{law}"} == set(answered)
    # once switched, it stays switched; and each answer is its version's own vector
    switched = answered.index(f"fin@{law}")
    assert set(answered[switched + 8 :]) <= {f"fin@{law}"}
    expected = {vid: offline(registry_copy, vid, TEXTS) for vid in (fin, law)}
    for _, model, (start, vector) in results:
        np.testing.assert_allclose(vector, expected[model.split("@")[1]][start], atol=1e-5)
    assert {m["id"]: m["version"] for m in listed}["fin"] == law


def test_killed_mid_load_the_server_restarts_and_serves(
    onnx_registry: Path, tmp_path: Path
) -> None:
    # ONNX: the server process starts in about a second (no torch to import)
    registry_copy = Path(shutil.copytree(onnx_registry, tmp_path / "registry"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "embedtune", "serve", "--registry", str(registry_copy),
        "--port", str(port), "--model", "general", "--backend", "onnx-int8",
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    env = {**os.environ, "EMBEDTUNE_API_KEYS": "k1,k2"}
    before = sorted(p.relative_to(registry_copy) for p in registry_copy.rglob("*"))
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        wait_ready(url, process=server)
        stop = threading.Event()
        results: list[tuple[int, str, list]] = []
        load = threading.Thread(target=_load_with_key, args=(url, stop, results))
        load.start()
        time.sleep(0.5)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        time.sleep(0.2)
        stop.set()
        load.join()
        assert any(r[0] == 200 for r in results)
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_ready(url, process=server)
        answer = httpx.post(
            f"{url}/v1/embeddings",
            json={"model": "general", "input": "revenue"},
            headers={"Authorization": "Bearer k2"},
        )
        assert answer.status_code == 200
    finally:
        server.kill()
        server.wait(10)
        log.close()
    # the server never writes to the registry: nothing to repair
    assert sorted(p.relative_to(registry_copy) for p in registry_copy.rglob("*")) == before


def _load_with_key(url: str, stop: threading.Event, out: list[tuple[int, str, list]]) -> None:
    with httpx.Client(timeout=5, headers={"Authorization": "Bearer k1"}) as client:
        while not stop.is_set():
            try:
                answer = client.post(
                    f"{url}/v1/embeddings", json={"model": "general", "input": "a"}
                )
                out.append((answer.status_code, "", []))
            except httpx.TransportError as exc:
                out.append((-1, type(exc).__name__, []))
                time.sleep(0.01)


def test_a_tag_moved_to_a_broken_version_keeps_the_old_one_serving(registry_copy: Path) -> None:
    registry = Registry(registry_copy)
    fin, law, general = (registry.resolve(t) for t in ("fin", "law", "general"))
    with (Path(registry.show(general).path) / "modules.json").open("a") as handle:
        handle.write(" ")  # its files no longer match its hash: refused on loading
    with serve_thread(registry=registry_copy, models=["fin"], reload_interval_s=0.05) as running:
        registry.promote(general, "fin")
        time.sleep(0.5)
        answer = httpx.post(f"{running.url}/v1/embeddings", json={"model": "fin", "input": "a"})
        assert answer.status_code == 200 and answer.json()["model"] == f"fin@{fin}"
        registry.promote(law, "fin")  # a good move after a bad one is picked up
        deadline = time.monotonic() + 10
        while _versions(running.url)["fin"] != law:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _versions(url: str) -> dict[str, str]:
    return {m["id"]: m["version"] for m in httpx.get(f"{url}/v1/models").json()["data"]}
