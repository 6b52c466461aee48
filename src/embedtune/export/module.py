"""The sentence-transformers model as one traceable torch module: transformer, pooling,
normalisation. Exports bake pooling into the graph, so every format returns the final vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embedtune.errors import ConfigError


@dataclass(frozen=True)
class EncoderSpec:
    """What a runtime needs besides the graph: inputs, length limit, pooling, prompts."""

    input_names: list[str]
    max_seq_length: int
    pooling: str
    normalize: bool
    dimension: int
    prompts: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_names": self.input_names,
            "max_seq_length": self.max_seq_length,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "dimension": self.dimension,
            "prompts": self.prompts,
        }


def _is_transformer(module: Any) -> bool:
    from sentence_transformers.base.modules import Transformer

    return isinstance(module, Transformer)


def embedding_module(st: Any) -> tuple[Any, EncoderSpec]:
    """A ``torch.nn.Module`` mapping token tensors to sentence embeddings, and its spec.

    Only the common stack (Transformer → Pooling (mean, cls or max) → optional Normalize) is
    supported; anything else is refused rather than exported wrong.
    """
    import torch

    names = [type(m).__name__ for m in st]
    # a Transformer subclass (bottleneck adapters: modules inside its Hugging Face model, so
    # traced with it) exports as its base class does
    names = ["Transformer" if _is_transformer(m) else n for m, n in zip(st, names, strict=True)]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        raise ConfigError(
            f"cannot export a model made of {names}: export supports Transformer → Pooling "
            "(→ Normalize)"
        )
    pooling = str(st[1].get_config_dict().get("pooling_mode", "mean"))
    if pooling not in ("mean", "cls", "max"):
        raise ConfigError(f"cannot export pooling mode '{pooling}': mean, cls or max only")
    normalize = names[2:] == ["Normalize"]
    hf = st[0].auto_model
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in st.tokenizer.model_input_names:
        input_names.append("token_type_ids")

    class Embedder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                feeds["token_type_ids"] = token_type_ids
            hidden = self.hf(**feeds).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                vector = hidden[:, 0]
            elif pooling == "max":  # padding must never win the max
                vector = (hidden - (1 - mask) * 1e9).max(dim=1).values
            else:
                vector = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(vector, p=2, dim=1) if normalize else vector

    spec = EncoderSpec(
        input_names=input_names,
        max_seq_length=int(st.max_seq_length),
        pooling=pooling,
        normalize=normalize,
        dimension=int(st.get_embedding_dimension() or 0),
        prompts={k: v for k, v in (st.prompts or {}).items() if v},
    )
    return Embedder().eval(), spec
