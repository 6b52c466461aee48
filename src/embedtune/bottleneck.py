"""Bottleneck adapters (Houlsby et al., 2019, "Parameter-Efficient Transfer Learning for NLP").

Every layer of a BERT-style encoder gets two small adapters, one after the attention output
projection and one after the feed-forward output projection (each after its dropout, before the
residual sum and LayerNorm): ``x + up(gelu(down(x)))`` with ``down: d → d // r`` and
``up: d // r → d``. ``up`` starts at zero, so the adapted model starts exactly equal to the
base; only the adapters train. The nonlinearity means they cannot be merged into the weights,
so the saved model keeps them.

Saving and loading: the model's first module becomes a ``BottleneckTransformer`` (a
sentence-transformers ``Transformer``), recorded by that name in ``modules.json``. Its folder
holds the usual transformer files plus ``bottleneck_config.json`` (where the adapters go and
their size); the adapter weights are in ``model.safetensors`` beside the base weights, under
keys containing ``.bottleneck.``. Loading the folder re-inserts the adapters and loads them.

- sentence-transformers 6 imports a module class from outside its own package only with
  ``trust_remote_code=True``, also for a local folder: load with
  ``SentenceTransformer(path, trust_remote_code=True)`` (embedtune must be installed; nothing
  is fetched, the class is imported from the installed package). embedtune's own loading
  (:func:`embedtune.models.load_model`: eval, export, serve, index) hands sentence-transformers
  the class itself, so it needs no ``trust_remote_code``.
- A plain ``transformers.AutoModel.from_pretrained(path)`` gives the base model *without* the
  adapters (a different model); it reports the adapter weights as unexpected keys.
- ONNX export traces the adapters: they are modules inside the Hugging Face model.

The torch classes are built on first use (``import embedtune`` must not import torch); they
are reached as attributes of this module, as ``modules.json`` names them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

from embedtune.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "KEY",
    "MODULE_CLASSES",
    "adapt_transformer",
    "adapter_parameters",
    "bottleneck_size",
    "check_sites",
    "insert_bottlenecks",
    "module_classes",
]

CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "model.safetensors"
KEY = ".bottleneck."  # every adapter weight's state-dict key contains it
# Where in each encoder layer (``encoder.layer.N``) an adapter goes: the module whose ``dense``
# projection (then ``dropout``) feeds the residual sum and LayerNorm (BertSelfOutput, BertOutput).
SITES = ("attention.output", "output")
_CLASSES = ("Bottleneck", "DropoutThenBottleneck", "BottleneckTransformer")
# the sentence-transformers module classes a saved model's modules.json may name
MODULE_CLASSES = (f"{__name__}.BottleneckTransformer",)


def bottleneck_size(hidden: int, reduction: int) -> int:
    """Width of the bottleneck: ``hidden // reduction`` (at least 1)."""
    return max(1, hidden // reduction)


def adapter_parameters(hidden: int, reduction: int, sites: int) -> int:
    """Trainable parameters of ``sites`` adapters: down (d·m + m) and up (m·d + d) each."""
    m = bottleneck_size(hidden, reduction)
    return sites * (2 * hidden * m + m + hidden)


@functools.cache
def _classes() -> dict[str, Any]:
    """The torch modules, defined when first needed (torch loads here, not at import)."""
    import torch
    from sentence_transformers.base.modules import Transformer

    class Bottleneck(torch.nn.Module):
        """``x + up(gelu(down(x)))``; ``up`` starts at zero: the adapter starts as identity."""

        def __init__(self, hidden: int, size: int) -> None:
            super().__init__()
            self.down = torch.nn.Linear(hidden, size)
            self.up = torch.nn.Linear(size, hidden)
            torch.nn.init.zeros_(self.up.weight)
            torch.nn.init.zeros_(self.up.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.up(torch.nn.functional.gelu(self.down(x)))

    class DropoutThenBottleneck(torch.nn.Module):
        """Takes the place of a layer's ``dropout`` (which follows its ``dense`` projection).

        The adapter goes after the dropout and before the residual + LayerNorm, as in Houlsby
        et al. Wrapping the parameter-free dropout leaves every base weight's key unchanged;
        the adapter's keys are new (``...output.dropout.bottleneck.*``)."""

        def __init__(self, dropout: torch.nn.Module, bottleneck: Bottleneck) -> None:
            super().__init__()
            self.dropout = dropout
            self.bottleneck = bottleneck

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bottleneck(self.dropout(x))

    class BottleneckTransformer(Transformer):
        """A sentence-transformers ``Transformer`` whose encoder carries bottleneck adapters.

        Saved like a ``Transformer`` (adapter weights inside ``model.safetensors``) plus
        ``bottleneck_config.json``; loading re-inserts the adapters, then loads their weights.
        """

        bottleneck_reduction: int = 16

        def bottleneck_config(self) -> dict[str, Any]:
            """What ``bottleneck_config.json`` records: enough to rebuild the adapters."""
            sites = _sites(self.auto_model)
            first = next(iter(sites.values())).dropout.bottleneck
            return {
                "method": "houlsby",
                "reduction": self.bottleneck_reduction,
                "hidden_size": int(first.down.in_features),
                "bottleneck_size": int(first.down.out_features),
                "activation": "gelu",
                "sites": [f"{name}.dropout.bottleneck" for name in sites],
                "note": "the adapter weights are in model.safetensors (keys with "
                "'.bottleneck.'); a plain transformers load drops them: load with "
                "SentenceTransformer(path, trust_remote_code=True), embedtune installed",
            }

        def save(
            self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any
        ) -> None:
            super().save(output_path, *args, safe_serialization=safe_serialization, **kwargs)
            with open(os.path.join(output_path, CONFIG_FILE), "w", encoding="utf-8") as out:
                json.dump(self.bottleneck_config(), out, indent=2)

        @classmethod
        def load(  # type: ignore[override]
            cls,
            model_name_or_path: str,
            subfolder: str = "",
            token: bool | str | None = None,
            cache_folder: str | None = None,
            revision: str | None = None,
            local_files_only: bool = False,
            **kwargs: Any,
        ) -> BottleneckTransformer:
            """The saved transformer, then its adapters re-inserted and their weights loaded."""
            hub: dict[str, Any] = {
                "subfolder": subfolder,
                "token": token,
                "cache_folder": cache_folder,
                "revision": revision,
                "local_files_only": local_files_only,
            }
            module = super().load(model_name_or_path, **hub, **kwargs)
            config_path = cls.load_file_path(model_name_or_path, CONFIG_FILE, **hub)
            weights_path = cls.load_file_path(model_name_or_path, WEIGHTS_FILE, **hub)
            if config_path is None or weights_path is None:
                raise ConfigError(
                    f"{model_name_or_path} names {cls.__name__} in modules.json but lacks "
                    f"{CONFIG_FILE} or {WEIGHTS_FILE}: it is not a complete bottleneck model"
                )
            with open(config_path, encoding="utf-8") as file:
                settings = json.load(file)
            module.bottleneck_reduction = int(settings["reduction"])
            insert_bottlenecks(module.auto_model, module.bottleneck_reduction)
            _load_adapter_weights(module.auto_model, weights_path)
            return module

    classes: dict[str, Any] = {
        "Bottleneck": Bottleneck,
        "DropoutThenBottleneck": DropoutThenBottleneck,
        "BottleneckTransformer": BottleneckTransformer,
    }
    for name, cls in classes.items():
        cls.__qualname__ = name  # named as if defined at module level (modules.json, repr)
    return classes


def __getattr__(name: str) -> Any:
    """``BottleneckTransformer`` and the other torch classes, built on first access."""
    if name in _CLASSES:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sites(hf: Any) -> dict[str, Any]:
    """Name → module (BertSelfOutput / BertOutput) of every place an adapter goes.

    Raises:
        ConfigError: The model has no BERT-style layers with those modules.
    """
    import torch

    layers = list(getattr(getattr(hf, "encoder", None), "layer", None) or [])
    found: dict[str, Any] = {}
    missing: list[str] = []
    for i, layer in enumerate(layers):
        for path in SITES:
            try:
                parent = layer.get_submodule(path)
            except AttributeError:
                parent = None
            dense = getattr(parent, "dense", None)
            dropout = getattr(parent, "dropout", None)
            if isinstance(dense, torch.nn.Linear) and isinstance(dropout, torch.nn.Module):
                found[f"encoder.layer.{i}.{path}"] = parent
            else:
                missing.append(f"encoder.layer.{i}.{path}.dense")
    if not layers or missing:
        what = f"no module {missing[0]}" if missing else "no encoder.layer"
        raise ConfigError(
            f"strategy 'bottleneck' needs a BERT-style encoder whose layers (encoder.layer.N) "
            f"have attention.output.dense and output.dense, each followed by dropout; "
            f"{type(hf).__name__} has {what}: use strategy 'lora' or 'full'"
        )
    return found


def insert_bottlenecks(hf: Any, reduction: int) -> list[Any]:
    """Put a bottleneck adapter after the attention and the feed-forward output projection of
    every layer of the Hugging Face model ``hf`` (in place); returns the adapters, in order.

    Raises:
        ConfigError: Not a BERT-style encoder, or it already has adapters.
    """
    classes = _classes()
    adapters = []
    for name, parent in _sites(hf).items():
        if isinstance(parent.dropout, classes["DropoutThenBottleneck"]):
            raise ConfigError(f"{name} already has a bottleneck adapter")
        hidden = int(parent.dense.out_features)
        weight = parent.dense.weight
        adapter = classes["Bottleneck"](hidden, bottleneck_size(hidden, reduction))
        adapter.to(device=weight.device, dtype=weight.dtype)
        parent.dropout = classes["DropoutThenBottleneck"](parent.dropout, adapter)
        adapters.append(adapter)
    return adapters


def _load_adapter_weights(hf: Any, path: str) -> None:
    """Load the adapters' weights from the saved ``model.safetensors``, strictly: every
    adapter weight must be there, and nothing else is taken from the file."""
    from safetensors import safe_open

    expected = {k for k in hf.state_dict() if KEY in k}
    with safe_open(path, framework="pt") as file:
        state = {k: file.get_tensor(k) for k in file.keys() if KEY in k}  # noqa: SIM118
    if set(state) != expected:
        raise ConfigError(
            f"{path}: the bottleneck adapter weights do not fit the model (missing "
            f"{sorted(expected - set(state))[:3]}, unexpected {sorted(set(state) - expected)[:3]})"
        )
    hf.load_state_dict(state, strict=False)  # shapes are checked; the base is loaded already


def adapt_transformer(module: Any, reduction: int) -> Any:
    """Insert adapters into an already loaded ``Transformer`` and make it a
    ``BottleneckTransformer``.

    Re-typing the instance (rather than building a new one) keeps the loaded weights,
    tokenizer and settings without reading the model from disk again; the subclass adds no
    state of its own besides the reduction factor.
    """
    insert_bottlenecks(module.auto_model, reduction)
    module.__class__ = _classes()["BottleneckTransformer"]
    module.bottleneck_reduction = reduction
    return module


def module_classes() -> dict[str, Any]:
    """``modules.json`` type → class, for sentence-transformers to load a saved bottleneck
    model without importing by name (and so without ``trust_remote_code``)."""
    return {ref: _classes()[ref.rsplit(".", 1)[1]] for ref in MODULE_CLASSES}


def check_sites(hf: Any) -> None:
    """Raise :class:`ConfigError` unless ``hf`` has the BERT-style layers adapters go into."""
    _sites(hf)
