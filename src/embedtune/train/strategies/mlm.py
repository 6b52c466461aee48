"""Domain-adaptive pretraining (``mlm``): continue masked-language-model training on the
domain corpus, then contrastive fine-tuning of every weight.

Sentence-transformers packages ship the encoder without its MLM head, so the head's transform
layer starts fresh (the output projection is tied to the word embeddings and is not new).
Whether this pays off is measured, not assumed (BENCHMARKS.md).

Only the masked positions (15%) are projected onto the vocabulary: the model's own forward
projects all of them, and on a CPU that projection and its softmax are about half of a step
(BENCHMARKS.md); the loss is the same mean cross-entropy over the masked tokens.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from embedtune.errors import ConfigError, DataError
from embedtune.io import is_main_process, write_json
from embedtune.train.checkpoints import (
    COMPLETE,
    checkpoint_callbacks,
    last_complete_checkpoint,
    recorded_seconds,
)
from embedtune.train.strategies.base import Domain, Strategy, register, transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig

logger = logging.getLogger(__name__)

DONE = "encoder.safetensors"  # the adapted encoder, written once the MLM phase has finished
DONE_RECORD = "encoder.json"  # the training's seconds when it was (written just before DONE)


def _check(model: SentenceTransformer, config: TrainConfig) -> None:
    tokenizer = model.tokenizer
    if getattr(tokenizer, "mask_token_id", None) is None:
        raise ConfigError(
            "strategy 'mlm' needs a tokenizer with a mask token; this model's has none: "
            "use strategy 'full'"
        )


def _blocks(tokenizer: Any, texts: list[str], length: int) -> list[list[int]]:
    """The corpus as one token stream cut into blocks of ``length`` (with [CLS]/[SEP]), so no
    compute is spent on padding and long documents are seen whole."""
    body = length - 2
    stream: list[int] = []
    for start in range(0, len(texts), 256):
        ids = tokenizer(texts[start : start + 256], add_special_tokens=False, verbose=False)
        for row in ids["input_ids"]:
            stream.extend([*row, tokenizer.sep_token_id])
    return [
        [tokenizer.cls_token_id, *stream[i : i + body], tokenizer.sep_token_id]
        for i in range(0, len(stream) - body // 4, body)  # drop a last scrap under 1/4 block
    ]


def _mlm_model(hf: Any) -> Any:
    """A masked-LM model around a copy of the encoder's weights (fresh head transform)."""
    from transformers import AutoModelForMaskedLM

    mlm = AutoModelForMaskedLM.from_config(hf.config)
    missing, _ = mlm.base_model.load_state_dict(hf.state_dict(), strict=False)
    if missing:
        raise ConfigError(
            f"strategy 'mlm': the encoder does not fit a masked-LM model ({missing[:3]})"
        )
    mlm.tie_weights()
    return mlm


def _masked_positions_only(mlm: Any) -> Any:
    """``mlm`` with a forward that projects only the labelled (masked) positions onto the
    vocabulary; its loss is the model's own (mean cross-entropy over those positions).

    The forward is replaced on the instance, not called from a Trainer hook, so a
    DistributedDataParallel wrapper still runs it (its gradient hooks need its own forward);
    saving is unchanged. An architecture whose head is not one module beside the encoder
    (BERT's ``cls``, RoBERTa's ``lm_head``) keeps its own forward.
    """
    import torch.nn.functional as F
    from transformers.modeling_outputs import MaskedLMOutput

    heads = [m for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    if len(heads) != 1:
        return mlm
    head, encoder = heads[0], mlm.base_model

    def forward(
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        labels: Any = None,
    ) -> MaskedLMOutput:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = encoder(**inputs).last_hidden_state
        if labels is None:
            return MaskedLMOutput(logits=head(hidden))
        masked = labels != -100
        return MaskedLMOutput(loss=F.cross_entropy(head(hidden[masked]), labels[masked]))

    mlm.forward = forward
    # the loss is a per-batch mean: the Trainer must not pass it a token count to divide by
    mlm.accepts_loss_kwargs = False
    return mlm


def _pretrain(
    model: SentenceTransformer, config: TrainConfig, domain: Domain
) -> SentenceTransformer:
    from safetensors.torch import load_file, save_file

    hf = transformer(model)
    folder = domain.work / "mlm"
    if (folder / DONE).is_file():  # finished before a kill: not redone on resume
        hf.load_state_dict(load_file(str(folder / DONE)), strict=False)
        domain.notes["mlm"] = {"reused": str(folder / DONE)}
        domain.clock.resumed(folder / DONE, recorded_seconds(folder / DONE_RECORD))
        return model
    from datasets import Dataset as HFDataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    length = int(config.mlm_seq_length or model.max_seq_length or 512)
    blocks = _blocks(model.tokenizer, domain.texts, length)
    if not blocks:
        raise DataError("strategy 'mlm': the domain corpus is empty; nothing to pretrain on")
    mlm = _masked_positions_only(_mlm_model(hf))
    args = TrainingArguments(
        output_dir=str(folder / "checkpoints"),
        num_train_epochs=config.mlm_epochs,
        max_steps=config.mlm_max_steps,
        per_device_train_batch_size=config.mlm_batch_size,
        learning_rate=config.mlm_learning_rate,
        warmup_steps=0.06,  # a ratio (transformers 5)
        lr_scheduler_type="linear",
        weight_decay=0.01,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.mlm_save_steps,
        save_total_limit=1,
        logging_steps=max(1, config.mlm_save_steps // 4),
        report_to="none",
        disable_tqdm=not is_main_process(),
        use_cpu=config.device == "cpu",
    )
    trainer = Trainer(
        model=mlm,
        args=args,
        train_dataset=HFDataset.from_dict({"input_ids": blocks}),
        data_collator=DataCollatorForLanguageModeling(
            model.tokenizer, mlm_probability=config.mlm_probability, seed=config.seed
        ),
        callbacks=checkpoint_callbacks(domain.clock),
    )
    from embedtune.train.progress import use_embedtune_progress

    use_embedtune_progress(trainer)  # one bar; the loss as a DEBUG line, not a raw dict
    checkpoint = last_complete_checkpoint(folder / "checkpoints") if domain.resume else None
    if checkpoint is not None:
        domain.clock.resumed(checkpoint, recorded_seconds(checkpoint / COMPLETE))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    encoder = {k: v.contiguous() for k, v in mlm.base_model.state_dict().items()}
    hf.load_state_dict(encoder, strict=False)
    if is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / DONE_RECORD, {"seconds": domain.clock.seconds()})
        tmp = folder / f".{DONE}.tmp"
        save_file(encoder, str(tmp))
        tmp.replace(folder / DONE)
    domain.notes["mlm"] = {
        "blocks": len(blocks),
        "block_tokens": length,
        "steps": trainer.state.global_step,
        "train_loss": round(float(result.training_loss), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    logger.info("mlm pretraining: %s", domain.notes["mlm"])
    return model


register(
    Strategy(
        "mlm",
        "masked-language-model pretraining on the domain corpus, then full contrastive tuning",
        check=_check,
        prepare=_pretrain,
    )
)
