"""The FastAPI app: OpenAI's ``POST /v1/embeddings`` and ``GET /v1/models``, plus
``/healthz``, ``/readyz`` and ``/metrics``.

Request text is never logged (not even on errors) and API keys never are either; model names
are looked up in the served table, never turned into paths.

Beyond OpenAI's fields a request may carry ``input_type``: ``query`` puts the model's query
prompt in front of every input, ``passage`` (or ``document``) its document prompt; without it
the inputs are encoded as they are (with the model's default prompt, if it has one), exactly
as ``SentenceTransformer.encode(texts)`` does. Every vector is L2-normalised. ``dimensions``
keeps the first N components and normalises again.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from embedtune.embedding_windows import QueryWatch, WatchFactory, WindowWriter
from embedtune.outputs import check_output
from embedtune.serve.batching import QueueFull, WorkerClosed
from embedtune.serve.config import ServeConfig
from embedtune.serve.metrics import Metrics
from embedtune.serve.models import ModelTable, ServedVersion

logger = logging.getLogger(__name__)

__all__ = ["ApiError", "EmbeddingRequest", "create_app", "run"]

# Requests up to this many characters are tokenized (to count) on the event loop; longer
# ones in a thread, so that one large request never stalls the others.
INLINE_CHARS = 2000


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request, plus ``input_type`` (query or passage prompts)."""

    model_config = ConfigDict(extra="ignore")

    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    model: StrictStr
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None
    input_type: Literal["query", "passage", "document"] | None = None


class _Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class _Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    """What ``POST /v1/embeddings`` answers (documented in the OpenAPI schema)."""

    object: Literal["list"] = "list"
    data: list[_Embedding]
    model: str = Field(description="the version that answered: 'tag@versionid' or the id")
    usage: _Usage


def _validation_error(exc: ValidationError | RequestValidationError) -> ApiError:
    first = exc.errors()[0]
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    # the union's member names (str, list[str], ...) say nothing to a client: drop them
    loc = [x for x in loc if not x.startswith(("str", "list[", "function-"))]
    param = ".".join(loc) or None
    message = (
        f"invalid value for '{param}': {first.get('msg', 'invalid')}"
        if param
        else str(first.get("msg", "invalid request"))
    )
    return ApiError(422, message, param=param, code="invalid_value")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) one over ``limit`` bytes before or while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body over {limit} bytes: send fewer or shorter inputs per request",
        code="request_too_large",
    )


class _Auth:
    """Bearer keys compared in constant time; every key is compared, match or not."""

    def __init__(self, config: ServeConfig) -> None:
        self._keys = [k.get_secret_value().encode() for k in config.api_keys]

    def check(self, request: Request) -> None:
        if not self._keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer KEY'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = given.strip().encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(key, token)
        if not ok:
            raise ApiError(
                401,
                "incorrect API key",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _prompt(served: ServedVersion, input_type: str | None) -> str:
    if input_type is None:
        return served.prompts.get("default", "")
    return served.prompts["query" if input_type == "query" else "document"]


def _texts(request: EmbeddingRequest, max_inputs: int) -> list[str]:
    raw = request.input
    texts = [raw] if isinstance(raw, str) else raw
    if texts and not all(isinstance(t, str) for t in texts):
        raise ApiError(
            400,
            "token-id input is not supported: send text (this server's tokenizer is not "
            "OpenAI's; with LangChain's OpenAIEmbeddings set check_embedding_ctx_length=False)",
            param="input",
            code="unsupported_input",
        )
    if not texts:
        raise ApiError(400, "'input' is empty: send at least one string", param="input")
    if len(texts) > max_inputs:
        raise ApiError(
            400,
            f"{len(texts)} inputs in one request; at most {max_inputs}",
            param="input",
            code="too_many_inputs",
        )
    strings = [t for t in texts if isinstance(t, str)]
    empty = [i for i, t in enumerate(strings) if not t.strip()]
    if empty:
        raise ApiError(
            400, f"input {empty[0]} is an empty string", param="input", code="empty_input"
        )
    return strings


def _encode_response(
    vectors: np.ndarray, encoding: str, dimensions: int | None
) -> list[dict[str, Any]]:
    if dimensions is not None:
        vectors = vectors[:, :dimensions]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    vectors = np.ascontiguousarray(vectors, dtype="<f4")  # little-endian float32, as OpenAI
    if encoding == "base64":
        rows: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors]
    else:
        rows = vectors.tolist()
    return [{"object": "embedding", "embedding": row, "index": i} for i, row in enumerate(rows)]


def create_app(
    config: ServeConfig, *, preload: bool = False, watches: WatchFactory | None = None
) -> FastAPI:
    """The server's FastAPI app.

    Args:
        config: What to serve and how.
        preload: Load every model now (errors raise here); otherwise they load in the
            background once the app starts and ``/readyz`` answers 503 until they are in.
        watches: Opens a live window per served version id, whose statistics ``/metrics``
            exports as ``embedtune_window_*`` gauges (the CLI passes
            ``embedtune.monitor.live.profile_watches``: versions with a reference profile).

    Raises:
        ConfigError: With ``preload``: a served name matches no version, or a version
            cannot be loaded on the backend.
        DataError: With ``preload``: a version's files no longer match its hash.

    Example:
        >>> import uvicorn
        >>> from embedtune.monitor.live import profile_watches
        >>> config = ServeConfig(registry="registry", models=["finance"])
        >>> app = create_app(config, preload=True, watches=profile_watches(Registry("registry")))
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # what `embedtune serve` runs
    """
    if config.log_embeddings is not None:  # appended to across restarts; never in the registry
        check_output(
            config.log_embeddings, [config.registry], option="--log-embeddings", exists_ok=True
        )
    metrics = Metrics()
    table = ModelTable(config, metrics)
    auth = _Auth(config)
    # --log-embeddings: one window writer per served version id (tags move, ids do not)
    writers: dict[str, WindowWriter] = {}
    writers_lock = threading.Lock()
    # live window gauges: one watch per served version id (None: that version has none)
    opened: dict[str, QueryWatch | None] = {}
    if preload:
        table.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        table.start()
        try:
            yield
        finally:
            await run_in_threadpool(table.close)
            for writer in writers.values():  # the last, partial windows
                await run_in_threadpool(writer.flush)

    app = FastAPI(
        title="embedtune",
        summary="OpenAI-compatible embeddings of registry versions",
        lifespan=lifespan,
    )
    app.state.table = table
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return ApiError(exc.status_code, str(exc.detail), code=code).response()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive (the process answers), whether or not the models are loaded."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to embed: every served model is loaded (503 until then, or on failure)."""
        if table.ready:
            return JSONResponse({"status": "ready", "models": sorted(table.names)})
        if table.error is not None:
            return ApiError(
                503, f"models failed to load: {table.error}", type="server_error"
            ).response()
        return ApiError(503, "models are loading", type="server_error", code="loading").response()

    @app.get("/metrics")
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        """Every served name with its version, base, backend, dimensions and passage window."""
        auth.check(request)
        return {"object": "list", "data": table.listing()}

    @app.get("/v1/models/{name}")
    async def get_model(name: str, request: Request) -> dict[str, Any]:
        """One served name (404 when not served)."""
        auth.check(request)
        found = table.lookup(name)
        if found is None:
            raise _unknown_model()
        return found[1].describe(name)

    @app.post("/v1/embeddings", response_model=EmbeddingResponse)
    async def embeddings(request: Request) -> Response:
        """OpenAI's embeddings endpoint (see the module's docstring for ``input_type``)."""
        started = time.perf_counter()
        # a served name only: request text never becomes a label or a log line
        seen = {"model": ""}
        status = 200
        try:
            auth.check(request)
            return await _embed(request, seen)
        except ApiError as exc:
            status = exc.status
            metrics.errors.labels(seen["model"], exc.code or exc.type).inc()
            return exc.response()
        finally:
            metrics.requests.labels(seen["model"], str(status)).inc()
            if status == 200:
                metrics.latency.labels(seen["model"]).observe(time.perf_counter() - started)

    async def _embed(request: Request, seen: dict[str, str]) -> Response:
        body = await _read_body(request, config.max_body_bytes)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON", code="invalid_json") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        try:
            req = EmbeddingRequest.model_validate(payload)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        texts = _texts(req, config.max_inputs)
        if not table.ready:
            raise ApiError(
                503,
                "models are loading: retry shortly",
                type="server_error",
                code="loading",
                headers={"Retry-After": "1"},
            )
        found = table.lookup(req.model)
        if found is None:
            raise _unknown_model()
        answered_as, served = found
        label = seen["model"] = req.model
        if req.dimensions is not None and not 1 <= req.dimensions <= served.dimension:
            raise ApiError(
                400,
                f"dimensions must be between 1 and {served.dimension} for this model",
                param="dimensions",
                code="invalid_dimensions",
            )
        prompt = _prompt(served, req.input_type)
        prompted = [prompt + t for t in texts]
        if sum(map(len, prompted)) <= INLINE_CHARS:
            counts = served.counter.count(prompted)  # sub-millisecond: no thread hop
        else:
            counts = await run_in_threadpool(served.counter.count, prompted)
        limit = served.max_seq_length
        too_long = [i for i, n in enumerate(counts) if n > limit]
        if too_long and config.long_inputs == "reject":
            raise ApiError(
                400,
                f"input {too_long[0]} has {counts[too_long[0]]} tokens; this model reads at "
                f"most {limit} (split it, or serve with long inputs truncated)",
                param="input",
                code="input_too_long",
            )
        tokens = [min(n, limit) for n in counts]
        served, vectors = await _run(served, req, prompt, texts, tokens)
        if req.input_type not in ("passage", "document"):  # queries only
            if watches is not None:
                await _watch(served, vectors)
            if config.log_embeddings is not None:
                _log(served, vectors)
        data = _encode_response(vectors, req.encoding_format, req.dimensions)
        total = sum(tokens)
        metrics.tokens.labels(label).inc(total)
        metrics.inputs.labels(label).inc(len(texts))
        body_out = {
            "object": "list",
            "data": data,
            "model": answered_as,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
        content = json.dumps(body_out, separators=(",", ":")).encode()
        return Response(content, media_type="application/json")

    async def _run(
        served: ServedVersion,
        req: EmbeddingRequest,
        prompt: str,
        texts: list[str],
        tokens: list[int],
    ) -> tuple[ServedVersion, np.ndarray]:
        """The vectors, and the version that computed them (a reload may swap it)."""
        for _ in range(3):
            try:
                future = served.worker.submit(served.adapter, prompt, texts, tokens)
            except QueueFull as exc:
                raise ApiError(
                    429,
                    "too many inputs are waiting: retry after the time in Retry-After",
                    type="rate_limit_error",
                    code="queue_full",
                    headers={"Retry-After": str(round(exc.retry_after))},
                ) from None
            except WorkerClosed:
                # the version was unloaded after a tag moved: the name now serves another
                found = table.lookup(req.model)
                if found is None:
                    raise _unknown_model() from None
                served = found[1]
                continue
            try:
                return served, await asyncio.wrap_future(future)
            except RuntimeError as exc:
                raise ApiError(500, str(exc), type="server_error", code="model_error") from None
        raise ApiError(503, "the model was being replaced: retry", type="server_error")

    async def _watch(served: ServedVersion, vectors: np.ndarray) -> None:
        """Feed a request's query vectors to its version's live window (opened once: the
        first request of a version reads its profile, in a thread)."""
        assert watches is not None
        if served.id not in opened:
            watch = await run_in_threadpool(watches, served.id)
            with writers_lock:
                if served.id not in opened:
                    opened[served.id] = watch
                    if watch is not None:
                        metrics.windows.watch(served.id, watch)
        watch = opened[served.id]
        if watch is not None:
            watch.add(vectors)

    def _log(served: ServedVersion, vectors: np.ndarray) -> None:
        """Queue a request's query vectors in its version's window (no text is kept). A full
        window is written once per ``log_window`` queries: a rare write of a few hundred KB."""
        with writers_lock:
            writer = writers.get(served.id)
            if writer is None:
                assert config.log_embeddings is not None
                writer = writers[served.id] = WindowWriter(
                    config.log_embeddings,
                    served.id,
                    size=config.log_window,
                    seconds=config.log_window_seconds,
                    model_sha256=served.model_sha256,
                )
        try:
            writer.add(vectors)
        except OSError as exc:  # a full disk must not fail the request it logs
            logger.warning("embedding log: %s", exc)

    return app


def _unknown_model() -> ApiError:
    # the requested name is not echoed: it is request text
    return ApiError(
        404,
        "the model does not exist or is not served here: see GET /v1/models",
        param="model",
        code="model_not_found",
    )


def run(config: ServeConfig, *, watches: WatchFactory | None = None) -> None:
    """Load every served model, then serve on ``config.host:config.port`` until stopped
    (``watches``: see :func:`create_app`)."""
    import uvicorn

    app = create_app(config, preload=True, watches=watches)
    logger.info(
        "serving %s on http://%s:%d (backend %s%s)",
        ", ".join(sorted(app.state.table.names)),
        config.host,
        config.port,
        config.backend,
        ", API keys required" if config.api_keys else "",
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        access_log=config.access_log,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
