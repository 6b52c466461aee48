"""Governance stage: find personal and regulated data, report counts (never values), redact."""

from embedtune.governance.config import TYPES, GovernanceConfig

__all__ = ["TYPES", "GovernanceConfig"]
