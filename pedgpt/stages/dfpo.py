"""Stage 3: DFPO — DPO on summed sequence log-probs + μ × mean-token NLL of the chosen answer.

Chosen and rejected answers travel as one batch of 2B rows (chosen first) through one forward. The
reference is ``cached`` (log-probs computed once before training by :meth:`DFPO.prepare`, stored on disk under
a fingerprint and attached to the batch), ``online`` (a frozen copy, evaluated each step) or
``adapter_disabled`` (the policy itself with its adapters switched off, for LoRA / MoE-LoRA policies).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import MISSING

from pedgpt.adapters import (
    adapters_disabled,
    clear_task_ids,
    inject_moe_lora,
    router_aux_loss,
    set_task_ids,
    set_token_mask,
)
from pedgpt.common.constants import DTYPES
from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import STAGE_RULES, Rule, one_of, positive
from pedgpt.data import stage_data as sd
from pedgpt.data.collate import collate_preference
from pedgpt.data.encode import encode_each, encode_pair
from pedgpt.data.templates import get_template
from pedgpt.data.token_store import SPLITS, Encoding, StoredExamples, TokenStore
from pedgpt.distributed.world import barrier, is_grouped, is_rank_zero, local_device
from pedgpt.losses.lm import sequence_mean_nll
from pedgpt.losses.preference import dfpo_loss, dpo_loss
from pedgpt.models.build import load_pretrained
from pedgpt.models.logps import SequenceLogProbs
from pedgpt.models.tokenizer import tokenizer_fingerprint
from pedgpt.stages import reference_cache as rc
from pedgpt.stages.module import CausalLMModule, adapter_settings, module_settings
from pedgpt.stages.registry import ReportSink, Stage, StageConfig, StageData, register_stage
from pedgpt.stages.steps import LossOutput, token_mask

log = logging.getLogger("pedgpt")
REFERENCE_MODES = ("cached", "online", "adapter_disabled")
LOSSES = ("dfpo", "dpo")


@dataclass
class DFPOConfig(StageConfig):
    beta: float = MISSING  # DPO temperature
    mu: float = MISSING  # weight of the instruction-following term (mean-token NLL of the chosen answer)
    loss: str = MISSING  # dfpo | dpo
    label_smoothing: float = MISSING  # conservative DPO when > 0
    ref: str = MISSING  # cached | online | adapter_disabled


class DFPOModule(CausalLMModule):
    stage_name = "dfpo"

    def __init__(
        self,
        *args: Any,
        beta: float = 0.1,
        mu: float = 1.0,
        loss: str = "dfpo",
        label_smoothing: float = 0.0,
        ref: str = "cached",
        ref_dir: str | None = None,
        adapter: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if loss not in LOSSES:
            raise ValueError(f"dfpo.loss must be 'dfpo' or 'dpo', got {loss!r}")
        if ref not in REFERENCE_MODES:
            raise ValueError(f"dfpo.ref must be one of {REFERENCE_MODES}, got {ref!r}")
        if ref == "adapter_disabled" and not adapter:
            raise ValueError("dfpo.ref=adapter_disabled needs an adapter on the policy (adapter=moe_lora)")
        self.beta, self.mu, self.loss_name, self.label_smoothing = beta, mu, loss, label_smoothing
        self.ref_mode, self.ref_dir, self.adapter_cfg = ref, ref_dir or self.init_dir, adapter
        self._ref_holder: list[SequenceLogProbs] = []  # online reference, kept out of state_dict/optimizer

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        return inject_moe_lora(lm, **self.adapter_cfg) if self.adapter_cfg else lm

    def configure_model(self) -> None:
        super().configure_model()
        if self.ref_mode == "online" and not self._ref_holder:
            ref = SequenceLogProbs(
                load_pretrained(self.ref_dir, self.model_dtype, self.trust_remote_code, self.attention)
            )
            ref.requires_grad_(False).eval()
            self._ref_holder.append(ref)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self._ref_holder:
            self._ref_holder[0].to(self.device)

    @torch.no_grad()
    def reference_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.ref_mode == "cached":
            return batch["ref_chosen"], batch["ref_rejected"]
        if self.ref_mode == "online":
            logp, _ = self._ref_holder[0](batch["input_ids"], batch["labels"], batch["attention_mask"])
        else:
            with adapters_disabled(self.lm):
                logp, _ = self.net(batch["input_ids"], batch["labels"], batch["attention_mask"])
        k = logp.shape[0] // 2
        return logp[:k], logp[k:]

    def loss_units(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tensor(batch["input_ids"].shape[0] // 2, device=batch["input_ids"].device)  # pairs

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str, normaliser: torch.Tensor) -> LossOutput:
        """The pairs' summed DFPO (or DPO) loss ÷ ``normaliser`` (the window's global pair count ÷ world size),
        plus the policy adapter's router loss when it has one."""
        if self.adapter_cfg:
            if "task_ids" in batch:
                set_task_ids(self.lm, batch["task_ids"])
            set_token_mask(self.lm, token_mask(batch))
        logp, n = self.forward_logps(batch)
        k = logp.shape[0] // 2
        ref_c, ref_r = self.reference_logps(batch)
        if self.loss_name == "dfpo":
            loss, metrics = dfpo_loss(
                logp[:k],
                logp[k:],
                ref_c,
                ref_r,
                sequence_mean_nll(logp[:k], n[:k]),
                beta=self.beta,
                mu=self.mu,
                label_smoothing=self.label_smoothing,
            )
        else:
            loss, metrics = dpo_loss(
                logp[:k], logp[k:], ref_c, ref_r, beta=self.beta, label_smoothing=self.label_smoothing
            )
        pairs = torch.tensor(k, device=loss.device)
        total = loss * k
        out = LossOutput(total / normaliser, total.detach(), pairs, tokens=n.sum(), metrics=metrics)
        aux = router_aux_loss(self.lm) if self.adapter_cfg and split == "train" else None
        if aux is not None:  # a batch statistic: averaged over the window's micro-batches
            out.metrics["loss/router_aux"] = aux.detach()
            out.loss = out.loss + aux / self.window_size
        return out

    def on_train_batch_end(self, *args: Any) -> None:
        if self.adapter_cfg:
            clear_task_ids(self.lm)


@register_stage
class DFPO(Stage):
    name = "dfpo"
    config_class = DFPOConfig
    corpus_parts = ("dfpo",)
    starts_from = "sft"
    rows_per_example = 2  # chosen + rejected
    rules = (
        *STAGE_RULES,
        positive("beta", hint="the DPO temperature; 0 makes the preference term constant"),
        Rule("mu", low=0),
        one_of("loss", LOSSES),
        one_of("ref", REFERENCE_MODES),
        Rule("label_smoothing", low=0, high=0.5, high_open=True),
    )

    def check(self) -> None:
        if self.st.ref == "adapter_disabled" and self.cfg.adapter.name == "none":
            raise ConfigError("dfpo.ref: adapter_disabled needs an adapter on the policy (adapter=moe_lora)")

    def check_data(self, root: str) -> None:
        sd.require_records(root, "dfpo", "train", "data.root: {path} holds no preference pairs; stage dfpo needs them")

    def policy_adapter(self) -> dict | None:
        return adapter_settings(self.cfg) if self.st.ref == "adapter_disabled" else None

    def encoding(self, tokenizer: Any) -> Encoding:
        encode = functools.partial(
            encode_each,
            encode_one=encode_pair,
            tokenizer=tokenizer,
            template=get_template(self.cfg.model.template),
            max_len=int(self.st.max_len),
        )
        items = {s: sd.corpus_part(self.cfg.data, "preference", s) for s in SPLITS}
        columns = dict.fromkeys(("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels"), "ids")
        return Encoding(items, encode, {**columns, "task_id": "int"}, {})

    def from_store(self, store: TokenStore) -> tuple[Sequence, Sequence]:
        """Pairs carry ``index``, their position: the key of their cached reference log-probs."""
        return tuple(StoredExamples(store.split(s), store.key, with_index=True) for s in SPLITS)  # type: ignore[return-value]

    def collate(self, tokenizer: Any) -> Callable[[list], dict]:
        return functools.partial(collate_preference, pad_id=tokenizer.pad_token_id)

    def prepare(self, data: StageData, init_dir: str, tokenizer: Any) -> dict[str, Any]:
        if self.st.ref != "cached":
            return {}
        return {"reference_cache": attach_reference(self.cfg, data.train, data.val, init_dir, tokenizer.pad_token_id)}

    def module(self, init_dir: str) -> DFPOModule:
        st = self.st
        return DFPOModule(
            **module_settings(self.cfg, self.key(), init_dir),
            beta=float(st.beta),
            mu=float(st.mu),
            loss=st.loss,
            label_smoothing=float(st.label_smoothing),
            ref=st.ref,
            ref_dir=init_dir,
            adapter=self.policy_adapter(),
        )

    def plan_model(self, model: Any) -> Any:
        adapter = self.policy_adapter()
        return inject_moe_lora(model, **adapter) if adapter else model

    def report(self, module: Any, val_metrics: dict[str, float], data: StageData, out: ReportSink) -> dict[str, Any]:
        return {
            "val_reward_accuracy": val_metrics.get("val/rewards/accuracies"),
            "val_reward_margin": val_metrics.get("val/rewards/margins"),
            "val_following_nll": val_metrics.get("val/loss/following"),
            "val_pairs": len(data.val),
        }

    @classmethod
    def markdown(cls, result: dict[str, Any], run_dir: str) -> list[str]:
        return [
            "## DFPO (held-out pairs)",
            "",
            f"- reward accuracy: {fmt(result.get('val_reward_accuracy'))}",
            f"- reward margin: {fmt(result.get('val_reward_margin'))}",
            f"- pairs: {result.get('val_pairs')}",
        ]

    @classmethod
    def console(cls, result: dict[str, Any]) -> str:
        return f"reward acc {fmt(result.get('val_reward_accuracy'))} on {result.get('val_pairs')} pairs"


def fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def attach_reference(cfg: Any, train: list, val: list, ref_dir: str, pad_id: int) -> str:
    """Load or compute (once, then cache) the reference log-probs of every pair; returns 'hit' or 'miss'.

    Rank 0 computes a missing cache while the other ranks wait at a barrier, then read it.
    """
    st = cfg.dfpo
    stored = isinstance(train, StoredExamples) and isinstance(val, StoredExamples) and train.key == val.key
    fp = rc.fingerprint(
        train.key if stored else [*train, *val],
        template=cfg.model.template,
        tokenizer_fp=tokenizer_fingerprint(ref_dir),
        max_len=int(st.max_len),
        truncation="left",
        dtype=cfg.model.dtype,
        attention=cfg.model.attention,
        ref_dir=ref_dir,
        cache_dir=cfg.paths.cache_dir,
    )
    cached = rc.load_cached(cfg.paths.cache_dir, fp)
    status = "hit" if cached is not None else "miss"
    grouped = is_grouped()
    if cached is None and (is_rank_zero() or not grouped):
        model = load_pretrained(
            ref_dir, DTYPES[cfg.model.dtype], bool(cfg.model.trust_remote_code), cfg.model.attention
        )
        ref = SequenceLogProbs(model)
        ref.to(local_device(cfg.trainer.accelerator))
        cached = rc.compute_reference_logps(ref, [*train, *val], pad_id, int(st.val_batch_size))
        del ref
        if is_rank_zero():
            rc.save_cached(cfg.paths.cache_dir, fp, *cached)
    if grouped:  # the other ranks wait for rank 0's cache instead of each loading the reference
        barrier()
        if cached is None:
            cached = rc.load_cached(cfg.paths.cache_dir, fp)
    log.info("dfpo reference cache %s (%s)", status, fp)
    chosen, rejected = cached
    rc.attach(train, chosen[: len(train)], rejected[: len(train)])
    rc.attach(val, chosen[len(train) :], rejected[len(train) :])
    return status
