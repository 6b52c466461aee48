"""The OpenAI client against a real uvicorn: vectors equal each version's offline embedding."""

from __future__ import annotations

import base64
import concurrent.futures
from functools import cache
from pathlib import Path

import httpx
import numpy as np
from openai import OpenAI

from embedtune.registry import Registry
from embedtune.retrieval.encoder import embed, open_encoder
from tests.serve.conftest import API_KEY, TEXTS, ThreadServer

QUERIES = ["why did revenue grow", "insurance claims reserves", "office space lease"]


@cache
def _encoder(path: str) -> object:
    return open_encoder(path)


def offline(registry: Path, name: str, texts: list[str], prompt: str = "") -> np.ndarray:
    """What the version embeds offline: loaded on its own (adapters onto a fresh base)."""
    folder = Registry(registry).verified_path(name)
    return embed(_encoder(str(folder)), texts, prompt=prompt)  # type: ignore[arg-type]


def client(server: ThreadServer) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


def test_float_and_base64_give_the_same_vectors(server: ThreadServer, serve_registry: Path) -> None:
    openai = client(server)
    floats = openai.embeddings.create(model="fin", input=TEXTS, encoding_format="float")
    packed = openai.embeddings.create(model="fin", input=TEXTS)  # the client's default: base64
    a = np.array([d.embedding for d in floats.data], dtype=np.float32)
    b = np.array([d.embedding for d in packed.data], dtype=np.float32)
    assert np.array_equal(a, b)
    assert [d.index for d in floats.data] == list(range(len(TEXTS)))
    vid = Registry(serve_registry).resolve("fin")
    assert floats.model == f"fin@{vid}" and floats.object == "list"
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > len(TEXTS)
    np.testing.assert_allclose(a, offline(serve_registry, "fin", TEXTS), atol=1e-5)
    # raw base64 is little-endian float32, as OpenAI's
    raw = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": "fin", "input": TEXTS[0], "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, a[0], atol=1e-6)  # alone, not padded in a batch


def test_two_adapters_on_one_base_at_once_each_equal_their_offline_embedding(
    server: ThreadServer, serve_registry: Path
) -> None:
    openai = client(server)
    expected = {tag: offline(serve_registry, tag, TEXTS) for tag in ("fin", "law", "general")}
    assert not np.allclose(expected["fin"], expected["law"], atol=1e-3)  # they differ

    def ask(i: int) -> tuple[str, int, np.ndarray]:
        tag = ("fin", "law", "general")[i % 3]
        start = i % len(TEXTS)
        texts = (TEXTS[start:] + TEXTS[:start])[: 1 + i % len(TEXTS)]
        answer = openai.embeddings.create(model=tag, input=texts)
        return tag, start, np.array([d.embedding for d in answer.data], dtype=np.float32)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(ask, range(72)))
    for tag, start, vectors in results:
        order = (list(range(start, len(TEXTS))) + list(range(start)))[: len(vectors)]
        np.testing.assert_allclose(vectors, expected[tag][order], atol=1e-5)
    models = {m.id: m for m in openai.models.list().data}
    fin, law = models["fin"].model_extra, models["law"].model_extra
    assert fin is not None and law is not None
    assert fin["shared_base"] and law["shared_base"] and fin["base"] == law["base"]
    assert not models["general"].model_extra["shared_base"]  # type: ignore[index]


def test_input_type_applies_the_models_prompts(server: ThreadServer, serve_registry: Path) -> None:
    openai = client(server)
    for input_type, prompt in (("query", "query: "), ("passage", "passage: ")):
        answer = openai.embeddings.create(
            model="fin", input=QUERIES, extra_body={"input_type": input_type}
        )
        got = np.array([d.embedding for d in answer.data], dtype=np.float32)
        np.testing.assert_allclose(
            got, offline(serve_registry, "fin", QUERIES, prompt=prompt), atol=1e-5
        )
    models = {m.id: m.model_extra for m in openai.models.list().data}
    assert models["fin"]["prompts"] == {"query": "query: ", "document": "passage: "}  # type: ignore[index]


def test_dimensions_truncate_and_renormalise(server: ThreadServer, serve_registry: Path) -> None:
    openai = client(server)
    answer = openai.embeddings.create(model="law", input=QUERIES, dimensions=8)
    got = np.array([d.embedding for d in answer.data], dtype=np.float32)
    full = offline(serve_registry, "law", QUERIES)[:, :8]
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)
    assert got.shape == (3, 8)
    info = openai.models.retrieve("law").model_extra
    assert info is not None
    assert info["dimensions"] == 32 and info["trained_for_dimensions"] is False


def test_a_version_id_is_served_too(server: ThreadServer, serve_registry: Path) -> None:
    vid = Registry(serve_registry).resolve("law")
    answer = client(server).embeddings.create(model=vid, input="a")
    assert answer.model == vid


def test_query_embeddings_are_logged_in_windows_without_text(
    serve_registry: Path, tmp_path: Path
) -> None:
    from embedtune.embedding_windows import list_windows, read_windows
    from tests.serve.conftest import serve_thread

    logs = tmp_path / "logs"
    queries = ["why did revenue grow", "leases of office space", "drivers as contractors"]
    with serve_thread(
        registry=serve_registry, models=["general"], log_embeddings=logs, log_window=2
    ) as running:
        api = OpenAI(base_url=f"{running.url}/v1", api_key="unused")
        answers = [api.embeddings.create(model="general", input=q) for q in queries]
        # documents being embedded (for an index) are not queries: not logged
        api.embeddings.create(
            model="general", input="a passage", extra_body={"input_type": "passage"}
        )
    record = Registry(serve_registry).show("general")
    folder = logs / record.id
    assert len(list_windows(folder)) == 2  # a full window of 2, then the last one at shutdown
    logged = read_windows(folder, last=2)
    sent = np.array([a.data[0].embedding for a in answers], dtype=np.float32)
    assert logged.embeddings.shape == sent.shape
    assert np.abs(logged.embeddings - sent).max() < 1e-3  # stored as float16
    assert logged.meta["model_sha256"] == (record.model_sha256 or record.content_sha256)
    blobs = b"".join(p.read_bytes() for p in folder.iterdir())
    assert not any(q.encode() in blobs for q in [*queries, "a passage"])
