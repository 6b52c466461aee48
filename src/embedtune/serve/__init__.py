"""Serve stage: an OpenAI-compatible embedding server over registry versions.

Several domain versions of one base model are served from one process: LoRA versions saved as
adapters load once onto a shared base (one worker per base, so batches never mix adapters),
full fine-tunes load as their own model, and ONNX exports are used when the backend asks
(torch is then never imported).

    from embedtune.serve import ServeConfig, create_app, serve
    serve(ServeConfig(registry="registry"))          # uvicorn on 127.0.0.1:8000
    app = create_app(ServeConfig(registry="registry"))  # or mount the app yourself

The ``serve`` extra (fastapi, uvicorn, prometheus-client) is checked here, once.
"""

from embedtune.errors import require

require("fastapi", "serve")
require("uvicorn", "serve")
require("prometheus_client", "serve")

from embedtune.serve.app import create_app, run  # noqa: E402
from embedtune.serve.config import ServeConfig  # noqa: E402

serve = run

__all__ = ["ServeConfig", "create_app", "serve"]
