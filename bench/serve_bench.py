"""Serving benchmark: `embedtune serve` against in-process encode and a plain FastAPI server.

Loopback only, bounded request loops. Concurrency 1, 8 and 32; requests of 1 and of 32
finance10k passages (96-token windows of the test split) and, at concurrency 1, of one short
query. Systems: the server with the torch and the onnx-int8 backend, a plain
one-request-one-encode FastAPI server (what a user would write), and
`SentenceTransformer.encode` in one process (the ceiling), and Infinity (`infinity-emb`,
torch engine) when `--infinity BIN` names its `infinity_emb` in a virtualenv of its own (it
pins numpy<2 and sentence-transformers<4). Also: the memory of 3 domains as
LoRA adapters on one base against 3 full models, and mixed traffic over 3 adapters against
traffic to one.

    .venv/bin/python bench/serve_bench.py            # everything, ~10 min on 2 cores
    .venv/bin/python bench/serve_bench.py --quick    # fewer requests per cell
    python3 -m venv /tmp/inf && /tmp/inf/bin/pip install torch==2.13.0 'infinity-emb[server,torch]'
    .venv/bin/python bench/serve_bench.py --infinity /tmp/inf/bin/infinity_emb

Writes bench/out/serve/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "finance10k"
OUT = Path(__file__).resolve().parent / "out" / "serve"
PY = sys.executable
EMBEDTUNE = [PY, "-m", "embedtune"]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- data -------------------------------------------------------------------------------


def passages(n: int = 2048) -> list[str]:
    """96-token windows (stride 48) of finance10k/test documents, as the model reads them."""
    from tokenizers import Tokenizer

    from embedtune.corpus.load import load_beir
    from embedtune.models import _default_model_path

    docs = list(load_beir(DATA, "test").corpus.values())
    tokenizer = Tokenizer.from_file(str(_default_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    texts: list[str] = []
    for doc in docs:
        ids = tokenizer.encode(doc.full_text, add_special_tokens=False).ids
        windows = [tokenizer.decode(ids[i : i + 96]) for i in range(0, max(1, len(ids)), 48)]
        texts += [w for w in windows if w.strip()]  # a window of symbols can decode to ''
        if len(texts) >= n:
            break
    return texts[:n]


def queries(n: int = 256) -> list[str]:
    rows = (DATA / "test" / "queries.jsonl").read_text().splitlines()[:n]
    return [json.loads(r)["text"] for r in rows]


# --- the registry -----------------------------------------------------------------------


def prepare(root: Path) -> Path:
    """A registry: the base model (tag base) with an ONNX export, 3 random LoRA adapters of
    it (dom1-3) and the same 3 merged into full models (full1-3). Reused when present."""
    registry_dir = root / "registry"
    if (registry_dir / "tags.json").is_file():
        return registry_dir
    import torch
    from peft import LoraConfig, TaskType
    from sentence_transformers import SentenceTransformer

    from embedtune.model_folder import write_settings
    from embedtune.models import (
        DEFAULT_MODEL,
        _default_model_path,
        folder_sha256,
        load_model,
        resolve_model,
    )
    from embedtune.registry import Registry
    from embedtune.testing import settings_record
    from embedtune.train.strategies.peft_methods import merge_adapters

    base = _default_model_path()
    registry = Registry(registry_dir)
    registry.promote(registry.add(base, name="minilm").id, "base")
    export = root / "export"
    shutil.rmtree(export, ignore_errors=True)
    subprocess.run(
        [*EMBEDTUNE, "-q", "export", str(base), "-o", str(export), "--formats",
         "onnx,onnx-int8", "--no-eval"],
        check=True,
    )  # fmt: skip
    registry.add_export(export)
    scores = {"ndcg@10": 0.0}
    for i in (1, 2, 3):
        model = SentenceTransformer(str(base), device="cpu")
        model.add_adapter(
            LoraConfig(
                task_type=TaskType.FEATURE_EXTRACTION,
                r=16,
                lora_alpha=32,
                target_modules=["query", "key", "value", "dense"],
            )
        )
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:  # a trained adapter's B is not zero
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.01)
        settings = settings_record(
            DEFAULT_MODEL,
            folder_sha256(str(base)),
            "lora",
            config={"save_adapter": True},
            seed=i,
            pairs=0,
            dev={"base": scores, "bm25": scores, "tuned": scores},
            training={"steps": 0, "seconds": 0.0, "trainable_parameters": 0, "parameters": 0},
        )
        adapter = root / f"dom{i}"
        shutil.rmtree(adapter, ignore_errors=True)
        model.save(str(adapter))
        write_settings(adapter, settings)
        registry.promote(registry.add(adapter, name=f"dom{i}").id, f"dom{i}")
        # the same domain as a full model: the adapter merged into the weights
        merged_model = merge_adapters(load_model(resolve_model(str(adapter)), device="cpu"))
        full = root / f"full{i}"
        shutil.rmtree(full, ignore_errors=True)
        merged_model.save(str(full))
        (full / "adapter_config.json").unlink(missing_ok=True)
        registry.promote(registry.add(full, name=f"full{i}").id, f"full{i}")
    return registry_dir


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process on 127.0.0.1; ready when /readyz (or /healthz) answers 200."""

    def __init__(self, command: list[str], probe: str = "/readyz") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [*command, "--port", str(self.port)]
        self.probe = probe

    def __enter__(self) -> Server:
        import httpx

        self.log = (OUT / "server.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.command}")
            try:
                if httpx.get(self.url + self.probe, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class PlainRequest(BaseModel):
    """The plain server's request (module level: FastAPI resolves the annotation here)."""

    input: str | list[str]
    model: str = ""


def plain_server(port: int) -> None:
    """The FastAPI server a user would write: one request, one ``model.encode``."""
    import uvicorn
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer

    from embedtune.models import _default_model_path

    model = SentenceTransformer(str(_default_model_path()), device="cpu")
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    def embed(req: PlainRequest) -> dict[str, Any]:
        texts = [req.input] if isinstance(req.input, str) else req.input
        vectors = model.encode(texts, normalize_embeddings=True)
        return {
            "object": "list",
            "data": [{"object": "embedding", "embedding": v.tolist(), "index": i}
                     for i, v in enumerate(vectors)],
            "model": req.model,
        }  # fmt: skip

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the client -------------------------------------------------------------------------


async def _drive(
    url: str,
    models: list[str],
    batches: list[list[str]],
    concurrency: int,
    encoding: str,
    time_cap: float,
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(batches)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> None:
            nonlocal failures
            body = {"model": models[i % len(models)], "input": batches[i]}
            if encoding:
                body["encoding_format"] = encoding
            started = time.perf_counter()
            answer = await client.post(url + "/v1/embeddings", json=body)
            if answer.status_code != 200:
                failures += 1
                return
            answer.json()
            latencies.append(time.perf_counter() - started)

        for i in range(min(concurrency, 4)):  # warm-up
            await one(i)
        latencies.clear()
        start = time.perf_counter()

        async def worker() -> None:
            while not queue.empty() and time.perf_counter() - start < time_cap:
                await one(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    inputs = sum(len(batches[i % len(batches)]) for i in range(len(latencies)))
    latencies.sort()
    if not latencies:
        return {"requests": 0, "failures": failures, "inputs_per_s": 0.0, "p50_ms": 0.0,
                "p99_ms": 0.0}  # fmt: skip
    return {
        "requests": len(latencies),
        "failures": failures,
        "inputs_per_s": inputs / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def drive(url: str, models: list[str], batches: list[list[str]], concurrency: int,
          encoding: str = "base64", time_cap: float = 15.0) -> dict[str, Any]:  # fmt: skip
    row = asyncio.run(_drive(url, models, batches, concurrency, encoding, time_cap))
    # the machine's 1-minute load average when the cell ended: other work on it shows here
    row["load"] = round(os.getloadavg()[0], 1)
    return row


def cells(
    texts: list[str], short: list[str], quick: bool
) -> list[tuple[str, int, list[list[str]]]]:
    """(name, concurrency, request batches) for every cell; bounded request counts."""
    scale = 0.3 if quick else 1.0
    out = []
    for c in (1, 8, 32):
        n1 = int(max(150, 20 * c) * scale)
        out.append(("1 passage", c, [[texts[i % len(texts)]] for i in range(n1)]))
        n32 = int(max(12, c) * scale)
        out.append(
            ("32 passages", c, [[texts[(32 * i + j) % len(texts)] for j in range(32)]
                                for i in range(n32)])
        )  # fmt: skip
    out.append(("1 short query", 1, [[short[i % len(short)]] for i in range(int(200 * scale))]))
    return out


# --- in-process ---------------------------------------------------------------------------


def in_process(variant: str) -> dict[str, Any]:
    """The ceiling: encode in this process (batches of 32 passages; one short query alone)."""
    from embedtune.models import _default_model_path

    texts, short = passages(1024), queries()
    if variant == "torch":
        from sentence_transformers import SentenceTransformer

        model: Any = SentenceTransformer(str(_default_model_path()), device="cpu")
    else:
        from embedtune.registry import Registry
        from embedtune.retrieval.onnx import OnnxEncoder

        record = Registry(OUT / "registry").show("base")
        model = OnnxEncoder(record.exports[0].path, variant)
    model.encode(texts[:64], batch_size=32)
    start = time.perf_counter()
    model.encode(texts, batch_size=32)
    rate = len(texts) / (time.perf_counter() - start)
    single = []
    for _ in range(3):
        model.encode(texts[:1])
    start = time.perf_counter()
    for i in range(64):
        t = time.perf_counter()
        model.encode([texts[i]])
        single.append(time.perf_counter() - t)
    single_rate = 64 / (time.perf_counter() - start)
    latencies = []
    for q in short[:100]:
        t = time.perf_counter()
        model.encode([q])
        latencies.append(time.perf_counter() - t)
    return {
        "batch32_inputs_per_s": rate,
        "one_at_a_time_inputs_per_s": single_rate,
        "short_query_p50_ms": 1000 * statistics.median(latencies),
        "short_query_p99_ms": 1000 * sorted(latencies)[int(0.99 * len(latencies))],
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its waited-for children used so far: per
    input, a measure of work that other load on the machine does not inflate as much as
    wall time (it does count threads spinning while they wait)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def batch_stats(url: str) -> tuple[float, float]:
    """(sum, count) of the server's requests-per-batch histogram ((0, 0): no metrics)."""
    import httpx

    text = httpx.get(url + "/metrics").text if url else ""
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("embedtune_batch_requests_sum"):
            total += float(line.split()[-1])
        elif line.startswith("embedtune_batch_requests_count"):
            count += float(line.split()[-1])
    return total, count


class InProcess:
    """``SentenceTransformer.encode`` in a process of its own, measured between the servers'
    runs of each cell (a machine shared with other work drifts; adjacent runs drift less)."""

    def __enter__(self) -> InProcess:
        self.process = subprocess.Popen(
            [PY, __file__, "inprocess-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.ask({"op": "ping"})
        return self

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


def inprocess_worker() -> None:
    """Answers the orchestrator's measurements, one JSON line each."""
    from sentence_transformers import SentenceTransformer

    from embedtune.models import _default_model_path

    model = SentenceTransformer(str(_default_model_path()), device="cpu")
    model.encode(["warm up"] * 8)
    for line in sys.stdin:
        command = json.loads(line)
        reply: dict[str, Any] = {}
        if command["op"] == "rate":  # batches of 32, as fast as encode goes
            texts, done = command["texts"], 0
            start = time.perf_counter()
            while done < len(texts) and time.perf_counter() - start < command["cap"]:
                model.encode(texts[done : done + 32], batch_size=32)
                done += len(texts[done : done + 32])
            reply = {"inputs_per_s": done / (time.perf_counter() - start), "inputs": done}
        elif command["op"] == "latency":  # one text per encode
            latencies = []
            for text in command["texts"]:
                t = time.perf_counter()
                model.encode([text])
                latencies.append(time.perf_counter() - t)
            latencies.sort()
            reply = {
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            }
        print(json.dumps(reply), flush=True)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="?", default="all", choices=["all", "plain", "inprocess", "inprocess-worker"]
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--variant", default="torch")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-domains", action="store_true", help="skip the 3-domain part")
    parser.add_argument("--infinity", help="infinity_emb executable (its own virtualenv)")
    args = parser.parse_args()
    if args.what == "plain":
        plain_server(args.port)
        return
    if args.what == "inprocess":
        print(json.dumps(in_process(args.variant)))
        return
    if args.what == "inprocess-worker":
        inprocess_worker()
        return
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.time()
    registry = prepare(OUT)
    texts, short = passages(), queries()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (loopback only)",
        "command": "python bench/serve_bench.py"
        + (" --quick" if args.quick else "")
        + (" --infinity BIN" if args.infinity else ""),
        "in_process": {},
        "in_process_per_cell": [],
        "servers": {},
    }
    for variant in ("int8",):
        done = subprocess.run(
            [PY, __file__, "inprocess", "--variant", variant],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        results["in_process"][variant] = json.loads(done.stdout.strip().splitlines()[-1])
        print(variant, "in-process", results["in_process"][variant], flush=True)
    serve = [*EMBEDTUNE, "-q", "serve", "--registry", str(registry)]
    systems = {
        "embedtune serve (torch)": ([*serve, "--model", "base"], "base", "base64", "/readyz"),
        # one intra-op thread leaves the other core to HTTP parsing and batching
        "embedtune serve (torch, --threads 1)": (
            [*serve, "--model", "base", "--threads", "1"],
            "base",
            "base64",
            "/readyz",
        ),
        "embedtune serve (onnx-int8)": (
            [*serve, "--model", "base", "--backend", "onnx-int8"],
            "base",
            "base64",
            "/readyz",
        ),
        "plain FastAPI (torch)": ([PY, __file__, "plain"], "base", "", "/healthz"),
    }
    if args.infinity:
        from embedtune.models import _default_model_path

        systems["Infinity 0.0.78 (torch)"] = (
            [args.infinity, "v2", "--model-id", str(_default_model_path()),
             "--served-model-name", "base", "--engine", "torch", "--device", "cpu",
             "--url-prefix", "/v1", "--log-level", "warning"],
            "base", "base64", "/health",
        )  # fmt: skip
        results["infinity"] = subprocess.run(
            [str(Path(args.infinity).parent / "pip"), "freeze"], capture_output=True, text=True
        ).stdout.split()
    for system in systems:
        results["servers"][system] = []
    # all three servers up at once, each cell run on them back to back: on a shared machine
    # the load drifts less within a cell than across a whole run
    with contextlib.ExitStack() as stack:
        running = {
            system: stack.enter_context(Server(command, probe))
            for system, (command, _, _, probe) in systems.items()
        }
        local = stack.enter_context(InProcess())
        # warm up every system on varied batch shapes first: a server's first batches of
        # each shape are slow (measured: up to ~0.9 s of CPU per single-passage request)
        for system, (_, model, encoding, _) in systems.items():
            drive(running[system].url, [model], [[t] for t in texts[-96:]], 8, encoding)
            drive(running[system].url, [model], [texts[-32:], texts[-64:-32]], 2, encoding)
        local.ask({"op": "rate", "texts": texts[-96:], "cap": 30.0})
        for name, c, batches in cells(texts, short, args.quick):
            flat = [t for batch in batches for t in batch]
            before = {system: batch_stats(server.url) for system, server in running.items()}
            cpu = {system: cpu_seconds(server.process.pid) for system, server in running.items()}
            used = cpu_seconds(local.process.pid)
            if name == "1 short query":
                ceiling = local.ask({"op": "latency", "texts": flat})
            else:
                ceiling = local.ask({"op": "rate", "texts": flat, "cap": 15.0})
                done_inputs = ceiling["inputs"]
                used = cpu_seconds(local.process.pid) - used
                ceiling["cpu_ms_per_input"] = round(1000 * used / max(done_inputs, 1), 1)
            ceiling["load"] = round(os.getloadavg()[0], 1)
            results["in_process_per_cell"].append({"request": name, "concurrency": c, **ceiling})
            print("in-process torch", name, c, ceiling, flush=True)
            for system, (_, model, encoding, _) in systems.items():
                row = {
                    "request": name,
                    "concurrency": c,
                    **drive(running[system].url, [model], batches, c, encoding),
                }
                used = cpu_seconds(running[system].process.pid) - cpu[system]
                # the CPU time covers the warm-up requests too (min(c, 4) of them)
                done_inputs = (row["requests"] + min(c, 4)) * len(batches[0])
                if done_inputs:
                    row["server_cpu_ms_per_input"] = round(1000 * used / done_inputs, 1)
                after = batch_stats(running[system].url)
                if after[1] > before[system][1]:  # requests per batch, from the server's metrics
                    row["requests_per_batch"] = round(
                        (after[0] - before[system][0]) / (after[1] - before[system][1]), 1
                    )
                results["servers"][system].append(row)
                print(system, row, flush=True)
    # 3 domains: adapters on one base against full models; mixed traffic against one domain
    if not args.no_domains:
        results["domains"] = domains(serve, texts, args.quick)
        print("domains", results["domains"], flush=True)
    results["seconds"] = time.time() - started
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    (OUT / "results.md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {OUT / 'results.json'} in {results['seconds']:.0f} s")


def domains(serve: list[str], texts: list[str], quick: bool) -> dict[str, Any]:
    """Memory of 3 domains as adapters on one base against 3 full models; mixed traffic."""
    extra: dict[str, Any] = {}
    mix = [[texts[i % len(texts)]] for i in range(int(640 * (0.3 if quick else 1)))]
    with Server([*serve, "--model", "dom1", "--model", "dom2", "--model", "dom3"]) as server:
        extra["rss_mb_3_adapters_one_base"] = server.rss_mb()
        extra["one_domain_c32"] = drive(server.url, ["dom1"], mix, 32)
        extra["three_domains_mixed_c32"] = drive(server.url, ["dom1", "dom2", "dom3"], mix, 32)
        extra["rss_mb_3_adapters_after_load"] = server.rss_mb()
    with Server([*serve, "--model", "full1", "--model", "full2", "--model", "full3"]) as server:
        extra["rss_mb_3_full_models"] = server.rss_mb()
        extra["three_full_models_mixed_c32"] = drive(
            server.url, ["full1", "full2", "full3"], mix, 32
        )
        extra["rss_mb_3_full_models_after_load"] = server.rss_mb()
    with Server([*serve, "--model", "base"]) as server:
        extra["rss_mb_base_alone"] = server.rss_mb()
    return extra


def markdown(results: dict[str, Any]) -> str:
    """The results as BENCHMARKS.md tables, with the issue's targets met or not."""
    lines = [
        f"Command: `{results['command']}`; {results['date']}; {results['machine']}.",
        "",
        "| system | request | concurrency | inputs/s | p50 ms | p99 ms | failed | requests/batch "
        "| CPU ms/input | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["in_process_per_cell"]:
        rate = f"{r['inputs_per_s']:.1f}" if "inputs_per_s" in r else ""
        p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else ""
        p99 = f"{r['p99_ms']:.1f}" if "p99_ms" in r else ""
        lines.append(
            f"| in-process encode (torch, batches of 32) | {r['request']} | "
            f"(cell c={r['concurrency']}) | {rate} | {p50} | {p99} | | "
            f"| {r.get('cpu_ms_per_input', '')} | {r.get('load', '')} |"
        )
    for system, rows in results["servers"].items():
        for r in rows:
            lines.append(
                f"| {system} | {r['request']} | {r['concurrency']} | {r['inputs_per_s']:.1f} "
                f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failures']} "
                f"| {r.get('requests_per_batch', '')} | {r.get('server_cpu_ms_per_input', '')} "
                f"| {r.get('load', '')} |"
            )
    for name, r in results["in_process"].items():
        lines.append(
            f"\nIn-process {name} (start of run): {r['batch32_inputs_per_s']:.1f} inputs/s in "
            f"batches of 32, short query p50 {r['short_query_p50_ms']:.1f} ms."
        )

    def cell(system: str, request: str, c: int) -> dict[str, Any]:
        rows = results["servers"][system]
        return next(r for r in rows if r["request"] == request and r["concurrency"] == c)

    def ceiling(request: str, c: int) -> dict[str, Any]:
        rows = results["in_process_per_cell"]
        return next(r for r in rows if r["request"] == request and r["concurrency"] == c)

    torch_rate = ceiling("1 passage", 32)["inputs_per_s"]
    torch_c32 = cell("embedtune serve (torch)", "1 passage", 32)["inputs_per_s"]
    plain_c32 = cell("plain FastAPI (torch)", "1 passage", 32)["inputs_per_s"]
    int8_c32 = cell("embedtune serve (onnx-int8)", "1 passage", 32)["inputs_per_s"]
    local_p50 = ceiling("1 short query", 1)["p50_ms"]
    one_c32 = cell("embedtune serve (torch, --threads 1)", "1 passage", 32)["inputs_per_s"]
    targets = [
        ("c=32, 1 passage, torch >= 0.9x in-process torch", torch_c32 / torch_rate, 0.9),
        ("c=32, 1 passage, torch >= 2x plain FastAPI", torch_c32 / max(plain_c32, 1e-9), 2.0),
        ("the same, --threads 1: >= 0.9x in-process torch", one_c32 / torch_rate, 0.9),
        ("the same, --threads 1: >= 2x plain FastAPI", one_c32 / max(plain_c32, 1e-9), 2.0),
        ("c=32, 1 passage, int8 >= 1x in-process torch", int8_c32 / torch_rate, 1.0),
    ]
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    for name, ratio, need in targets:
        lines.append(f"| {name} | {ratio:.2f}x | {'yes' if ratio >= need else 'no'} |")
    infinity = next((s for s in results["servers"] if s.startswith("Infinity")), None)
    if infinity is not None:  # a comparison, not a target
        for request, c in (("1 passage", 32), ("32 passages", 32), ("1 passage", 1)):
            ours = cell("embedtune serve (torch)", request, c)["inputs_per_s"]
            theirs = cell(infinity, request, c)["inputs_per_s"]
            lines.append(
                f"| {request}, c={c}: embedtune serve (torch) / {infinity} (no target) "
                f"| {ours / max(theirs, 1e-9):.2f}x | |"
            )
    for system in ("embedtune serve (torch)", "embedtune serve (torch, --threads 1)"):
        p50 = cell(system, "1 short query", 1)["p50_ms"]
        gap = p50 - local_p50
        lines.append(
            f"| c=1 short query p50 within 5 ms of in-process ({system}) | {p50:.1f} vs "
            f"{local_p50:.1f} ms ({gap:+.1f}) | {'yes' if gap <= 5 else 'no'} |"
        )
    d = results.get("domains", {})
    if d:
        lines += [
            "",
            "| 3 domains | RSS MB at start | RSS MB after load | mixed c=32 inputs/s |",
            "|---|---:|---:|---:|",
            f"| base model alone | {d['rss_mb_base_alone']:.0f} | | |",
            f"| 3 LoRA adapters on one base | {d['rss_mb_3_adapters_one_base']:.0f} "
            f"| {d['rss_mb_3_adapters_after_load']:.0f} "
            f"| {d['three_domains_mixed_c32']['inputs_per_s']:.1f} "
            f"(one adapter only: {d['one_domain_c32']['inputs_per_s']:.1f}) |",
            f"| 3 full models | {d['rss_mb_3_full_models']:.0f} "
            f"| {d['rss_mb_3_full_models_after_load']:.0f} "
            f"| {d['three_full_models_mixed_c32']['inputs_per_s']:.1f} |",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
