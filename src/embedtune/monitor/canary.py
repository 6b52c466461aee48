"""Model change, not drift: fixed canary texts re-embedded by the model now served.

A profile keeps a few reference queries and the vectors its model gave them. Whenever the
served model or runtime changes (PyTorch → ONNX int8, a tag moved, a library upgraded), the
canary texts are embedded again; a cosine below the recorded parity means the vectors
changed, so any drift found afterwards may be the model's doing, not the data's.
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import BaseModel

from embedtune.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["SAME_RUNTIME_MIN_COSINE", "CanaryResult", "compare_canary"]

# The same weights on the same runtime reproduce vectors to float noise; an export's parity
# check records its own bound, which replaces this one for that variant.
SAME_RUNTIME_MIN_COSINE = 0.999


class CanaryResult(BaseModel):
    """Recorded canary vectors against the ones embedded now.

    Attributes:
        texts: Canary texts compared.
        min_cosine: Smallest cosine between a text's recorded and current vector.
        mean_cosine: Their mean.
        allowed_min_cosine: The bound (recorded parity of the variant, or same-runtime).
        changed: Whether ``min_cosine`` fell below the bound: a model change.
        status: ``same`` or ``model-change``.
        parity_source: Where the bound came from.
    """

    texts: int
    min_cosine: float
    mean_cosine: float
    allowed_min_cosine: float
    changed: bool
    status: str
    parity_source: str = "same-runtime default"


def compare_canary(
    recorded: np.ndarray,
    current: np.ndarray,
    *,
    min_cosine: float = SAME_RUNTIME_MIN_COSINE,
    parity_source: str = "same-runtime default",
) -> CanaryResult:
    """Compare the canary vectors recorded in a profile with the ones embedded now.

    Raises:
        DataError: No canary texts, or vectors of a different count or size (a model with
            another dimension is a model change too, but there is nothing to compare).
    """
    a = np.asarray(recorded, dtype=np.float32)
    b = np.asarray(current, dtype=np.float32)
    if len(a) == 0:
        raise DataError("the profile holds no canary texts (built with canary_texts=0)")
    if a.shape != b.shape:
        raise DataError(
            f"canary vectors {b.shape} do not match the recorded {a.shape}: a different model "
            "(another dimension) was embedded"
        )
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    cos = (a * b).sum(axis=1)
    changed = bool(cos.min() < min_cosine)
    return CanaryResult(
        texts=len(a),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        allowed_min_cosine=min_cosine,
        changed=changed,
        status="model-change" if changed else "same",
        parity_source=parity_source,
    )
