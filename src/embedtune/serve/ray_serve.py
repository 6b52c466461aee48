"""The same server as a Ray Serve deployment (``ray`` extra), for more than one machine.

The server keeps no state of its own (models come from the registry folder, which every
replica must see, e.g. on shared storage), so replicas scale out freely; each replica loads
its models once and follows the registry's tags like a single server does.

    from ray import serve
    from embedtune.serve import ServeConfig
    from embedtune.serve.ray_serve import deployment

    serve.run(deployment(ServeConfig(registry="/shared/registry"), num_replicas=2))

Ray is imported only when :func:`deployment` is called; without it the call fails with
"pip install 'embedtune[ray]'".
"""

from __future__ import annotations

import logging
from typing import Any

from embedtune.errors import require
from embedtune.serve.config import ServeConfig

logger = logging.getLogger(__name__)

__all__ = ["deployment"]


def _build(config: ServeConfig) -> Any:
    """Runs on each replica: the app, with its models loaded before it takes requests."""
    from embedtune.serve.app import create_app

    return create_app(config, preload=True)


def deployment(config: ServeConfig, **options: Any) -> Any:
    """A bound Ray Serve application of the embedtune app, ready for ``serve.run``.

    Args:
        config: What to serve (``host``/``port`` are Ray's to choose: see Ray Serve's HTTP
            options).
        options: Passed to ``ray.serve.deployment`` (``num_replicas``,
            ``ray_actor_options``, ``max_ongoing_requests``, ...).

    Raises:
        MissingExtraError: Ray (with Serve) is not installed.
    """
    require("ray", "ray")
    from ray import serve

    # a builder, not an app: the app (threads, models) is made on each replica, never pickled.
    # A plain function: Ray tells a builder from an ASGI app by inspect.isfunction, so a
    # functools.partial would be taken for the app itself and called with (scope, receive, send).
    def builder() -> Any:
        return _build(config)

    ingress = serve.ingress(builder)
    options.setdefault("name", "embedtune")
    return serve.deployment(ingress(type("EmbedtuneServer", (), {})), **options).bind()
