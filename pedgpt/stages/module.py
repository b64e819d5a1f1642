"""The shared causal-LM LightningModule: model building, optimiser and schedule, checkpoint state, export.

Stage modules subclass :class:`CausalLMModule` and override ``compute_loss`` (returning a
:class:`~pedgpt.stages.steps.LossOutput`; the window training step and validation are in
:mod:`pedgpt.stages.steps`) and, for adapters, ``adapt``. The model is built in ``configure_model`` (so sharded strategies can build it on
the meta device) from an HF-format directory: the previous stage's export, or the run's initial export.

What callbacks and the pipeline read off a module goes through one typed object, ``module.telemetry``
(:class:`Telemetry`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pedgpt.common.constants import DTYPES
from pedgpt.common.errors import CheckpointError
from pedgpt.common.rng import rng_state, set_rng_state
from pedgpt.distributed.fsdp import build_sharded, gather_full_state_dict
from pedgpt.models.baichuan2.convert import copy_tokenizer_extras
from pedgpt.models.build import count_parameters, load_pretrained
from pedgpt.models.exports import assert_finite, write_adapter_export
from pedgpt.models.flops import flops_per_token
from pedgpt.models.logps import SequenceLogProbs
from pedgpt.stages.schedule import warmup_cosine
from pedgpt.stages.steps import LossOutput, WindowSteps


@dataclass
class Telemetry:
    """Values a module hands to callbacks, the pipeline and the report (one typed object instead of ad-hoc
    attributes). Tensors stay on device until a callback reads them at a logging step."""

    train_loss: torch.Tensor | None = None  # the last training step's loss (global over ranks)
    step_tokens: torch.Tensor | None = None  # label tokens of the last training batch on this rank
    flops_per_token: float | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    nonfinite_skipped: int = 0
    val_task_loss: dict[str, float] | None = None  # token-mean validation NLL per task (task-aware stages)
    val_router: dict[str, Any] | None = None  # router statistics of the last validation (MoE-LoRA)


def optimizer_factory(node: DictConfig) -> Callable[..., torch.optim.Optimizer]:
    """A partial optimizer from a ``<stage>.optimizer`` node; null optional keys are not passed."""
    spec = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if v is not None}
    return instantiate(spec)


def module_settings(cfg: DictConfig, key: str, init_dir: str) -> dict[str, Any]:
    """The :class:`CausalLMModule` keyword arguments every stage takes from the run config (stage ``key``)."""
    st = cfg[key]
    fsdp = cfg.trainer.strategy == "fsdp"
    return dict(
        init_dir=init_dir,
        optimizer=optimizer_factory(st.optimizer),
        warmup_steps=int(st.warmup_steps),
        min_lr_ratio=float(st.min_lr_ratio),
        loss_chunk_size=int(st.loss_chunk_size),
        dtype=cfg.model.dtype,
        trust_remote_code=bool(cfg.model.trust_remote_code),
        attention=cfg.model.attention,
        activation_checkpointing=bool(st.activation_checkpointing),
        max_nonfinite_in_a_row=int(cfg.max_nonfinite_in_a_row),
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        fsdp=(OmegaConf.to_container(cfg.trainer.fsdp, resolve=True) or {}) if fsdp else None,
    )


class CausalLMModule(WindowSteps, L.LightningModule):
    """Token-mean NLL on label tokens (CPT, SFT); the base of every stage's module."""

    stage_name = "lm"

    def __init__(
        self,
        init_dir: str,
        optimizer: Callable[..., torch.optim.Optimizer],
        *,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        loss_chunk_size: int = 0,
        dtype: str = "float32",
        trust_remote_code: bool = False,
        attention: str = "sdpa",
        activation_checkpointing: bool = False,
        max_nonfinite_in_a_row: int = 5,
        fsdp: dict | None = None,
        gradient_clip_val: float | None = None,
    ):
        super().__init__()
        # manual optimisation: a non-finite step must not count toward max_steps nor move the LR schedule
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self.init_dir = init_dir
        self.optimizer_factory = optimizer
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.loss_chunk_size = loss_chunk_size
        self.model_dtype = DTYPES[dtype]
        self.trust_remote_code = trust_remote_code
        self.attention = attention
        self.activation_checkpointing = activation_checkpointing
        self.net: SequenceLogProbs | None = None
        self.max_nonfinite_in_a_row = max_nonfinite_in_a_row
        self.fsdp_cfg = fsdp  # None: not sharded; a dict: FSDP2 settings (param/reduce dtype, resharding)
        self.adapter_cfg: dict | None = None  # set by stages whose model carries MoE-LoRA adapters
        self.telemetry = Telemetry()
        self._nonfinite_run = 0
        self._pending_rng: dict | None = None

    # -- model ---------------------------------------------------------------------------------------
    @property
    def trains_base(self) -> bool:
        """Whether the base model's own weights train (full fine-tuning) — not when adapters carry the update."""
        return not self.adapter_cfg

    def build_lm(self) -> torch.nn.Module:
        """The starting model: weights that train are fp32 master weights (compute in the trainer's precision);
        a frozen base stays in ``model.dtype``."""
        dtype = torch.float32 if self.trains_base else self.model_dtype
        return load_pretrained(self.init_dir, dtype, self.trust_remote_code, self.attention)

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        """Hook for stages that wrap or freeze the base model (MoE-LoRA)."""
        return lm

    @property
    def is_sharded(self) -> bool:
        return self.fsdp_cfg is not None and getattr(self, "_device_mesh", None) is not None

    def configure_model(self) -> None:
        if self.net is not None:
            return
        if self.is_sharded:
            self.net = build_sharded(
                self.init_dir,
                self.adapt,
                lambda lm: SequenceLogProbs(lm, self.loss_chunk_size),
                self._device_mesh["data_parallel"],
                self.trainer.strategy.root_device,
                self.fsdp_cfg,
                self.trust_remote_code,
                self.activation_checkpointing,
                self.attention,
            )
        else:
            lm = self.adapt(self.build_lm())
            if self.activation_checkpointing:
                lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            self.net = SequenceLogProbs(lm, self.loss_chunk_size)
        self.net.train()  # from_pretrained returns eval mode; router noise and dropout need train mode

    @property
    def lm(self) -> torch.nn.Module:
        return self.net.lm

    def on_fit_start(self) -> None:
        total, trainable = count_parameters(self.net)
        t = self.telemetry
        t.params_total, t.params_trainable = total, trainable
        c = self.lm.config
        embed = self.lm.get_input_embeddings().weight
        n_embed = embed.numel() if not hasattr(embed, "full_tensor") else embed.shape.numel()
        seq = getattr(self.trainer.datamodule, "max_len", None) or getattr(c, "max_position_embeddings", 2048)
        t.flops_per_token = flops_per_token(total - n_embed, c.num_hidden_layers, c.hidden_size, int(seq))
        for lg in self.loggers:
            lg.log_metrics(
                {"model/params_total": float(total), "model/params_trainable": float(trainable)},
                step=self.trainer.global_step,
            )

    # -- state Lightning does not checkpoint by itself -----------------------------------------------
    def model_fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to belong to this model (architecture + adapter)."""
        c = self.lm.config
        arch = {
            k: getattr(c, k, None)
            for k in (
                "model_type",
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
            )
        }
        return {"arch": arch, "adapter": self.adapter_cfg}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["pedgpt"] = {
            "rng": rng_state(),
            "nonfinite_skipped": self.telemetry.nonfinite_skipped,
            "stage": self.stage_name,
            "init_dir": os.path.abspath(self.init_dir),
            "model": self.model_fingerprint(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("pedgpt", {})
        if "model" in state and state["model"] != self.model_fingerprint():
            raise CheckpointError(
                f"the checkpoint was written for another model or adapter ({state['model']}) than "
                f"this run's ({self.model_fingerprint()}); resume with the same model and adapter "
                "settings"
            )
        self.telemetry.nonfinite_skipped = int(state.get("nonfinite_skipped", 0))
        self._pending_rng = state.get("rng")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:  # restore right before the first resumed step
            set_rng_state(self._pending_rng)
            self._pending_rng = None

    # -- optimisation --------------------------------------------------------------------------------
    def configure_optimizers(self):
        params = [p for p in self.trainer.model.parameters() if p.requires_grad]
        opt = self.optimizer_factory(params)
        total = max(1, self.trainer.max_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            functools.partial(
                warmup_cosine, warmup_steps=self.warmup_steps, total_steps=total, min_ratio=self.min_lr_ratio
            ),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- steps (the window training step and validation: pedgpt.stages.steps) ----------------------------
    def forward_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(batch["input_ids"], batch["labels"], batch.get("attention_mask"), batch.get("position_ids"))

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str, normaliser: torch.Tensor) -> LossOutput:
        """Summed NLL of the label tokens ÷ ``normaliser`` (the window's global token count ÷ world size)."""
        logp, n = self.forward_logps(batch)
        total = -logp.sum()
        return LossOutput(total / normaliser, total.detach(), n.sum(), tokens=n.sum())

    # -- export --------------------------------------------------------------------------------------
    def export(self, out_dir: str, tokenizer: Any, writer: bool = True) -> None:
        """HF-format export (``save_pretrained`` in ``model.dtype`` + tokenizer), or an adapter export when the model
        carries MoE-LoRA adapters. Called on every rank (sharded tensors are gathered collectively); only ``writer``
        writes files. Tokenizer files the tokenizer object does not save itself (sentencepiece ``tokenizer.model``)
        are carried over from the stage's starting export."""
        if self.adapter_cfg:
            write_adapter_export(self.lm, out_dir, tokenizer, self.init_dir, writer)
        else:
            state = gather_full_state_dict(self.lm) if self.is_sharded else self.lm.state_dict()
            if not writer:
                return
            assert_finite(state, f"{self.stage_name} export")
            state = {k: v.to(self.model_dtype) if v.is_floating_point() else v for k, v in state.items()}
            self.lm.config.dtype = self.model_dtype  # config.json says what the files hold
            os.makedirs(out_dir, exist_ok=True)
            self.lm.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(out_dir)
        if writer:
            copy_tokenizer_extras(self.init_dir, out_dir)


def adapter_settings(cfg: DictConfig) -> dict | None:
    """``inject_moe_lora`` keyword arguments from the ``adapter`` node (None for ``adapter=none``)."""
    a = OmegaConf.to_container(cfg.adapter, resolve=True)
    if a.pop("name", "none") == "none":
        return None
    extra = {k: v for k, v in (a.pop("router_kwargs", None) or {}).items() if v is not None}
    return {**a, **extra}
