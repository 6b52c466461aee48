"""Governance stage: find personal and regulated data, report counts (never values), redact.

The stage's verb is `scan` (`ScanConfig` in, `ScanResult` out). `GovernanceConfig` alone is
the ``governance:`` block of a run config.
"""

from embedtune.governance.config import TYPES, CustomPattern, GovernanceConfig, ScanConfig
from embedtune.governance.scan import Redaction, ScanResult, TypeFindings, scan

__all__ = [
    "TYPES",
    "CustomPattern",
    "GovernanceConfig",
    "Redaction",
    "ScanConfig",
    "ScanResult",
    "TypeFindings",
    "scan",
]
