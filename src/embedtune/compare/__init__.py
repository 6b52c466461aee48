"""Compare adaptation approaches on one dataset under one budget: the approach matrix
(quality with intervals and significance, cost, forgetting) and learning curves.

    from embedtune.compare import compare, load_compare_config
    result = compare(load_compare_config("examples/compare.yaml"))
    result.matrix.verdicts["lora"]
"""

from __future__ import annotations

from embedtune.compare.approaches import APPROACHES, Approach
from embedtune.compare.config import CompareConfig, load_compare_config, plan_cells
from embedtune.compare.matrix import CellResult, Matrix
from embedtune.compare.run import CompareResult, compare

__all__ = [
    "APPROACHES",
    "Approach",
    "CellResult",
    "CompareConfig",
    "CompareResult",
    "Matrix",
    "compare",
    "load_compare_config",
    "plan_cells",
]
