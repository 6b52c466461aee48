"""Registry stage: immutable, content-addressed model versions with lineage, moving tags."""

from embedtune.registry.registry import Registry

__all__ = ["Registry"]
