"""Stage 3: DFPO — DPO on summed sequence log-probs + μ × mean-token NLL of the chosen answer.

Chosen and rejected answers travel as one batch of 2B rows (chosen first) through one forward. The
reference is ``cached`` (log-probs precomputed before training and attached to the batch),
``online`` (a frozen copy, evaluated each step) or ``adapter_disabled`` (the policy itself with its
adapters switched off, for LoRA / MoE-LoRA policies).
"""
from __future__ import annotations

from typing import Any

import torch

from pedgpt.losses.lm import sequence_mean_nll
from pedgpt.losses.preference import dfpo_loss, dpo_loss
from pedgpt.models.build import load_pretrained
from pedgpt.models.logps import SequenceLogProbs
from pedgpt.stages.base import CausalLMStage, mean_over_ranks

REFERENCE_MODES = ("cached", "online", "adapter_disabled")


class DFPOStage(CausalLMStage):
    stage_name = "dfpo"

    def __init__(self, *args: Any, beta: float = 0.1, mu: float = 1.0, loss: str = "dfpo", label_smoothing: float = 0.0,
                 ref: str = "cached", ref_dir: str | None = None, adapter: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if loss not in ("dfpo", "dpo"):
            raise ValueError(f"dfpo.loss must be 'dfpo' or 'dpo', got {loss!r}")
        if ref not in REFERENCE_MODES:
            raise ValueError(f"dfpo.ref must be one of {REFERENCE_MODES}, got {ref!r}")
        if ref == "adapter_disabled" and not adapter:
            raise ValueError("dfpo.ref=adapter_disabled needs an adapter on the policy (adapter=moe_lora)")
        self.beta, self.mu, self.loss_name, self.label_smoothing = beta, mu, loss, label_smoothing
        self.ref_mode, self.ref_dir, self.adapter_cfg = ref, ref_dir or self.init_dir, adapter
        self._ref_holder: list[SequenceLogProbs] = []  # online reference, kept out of state_dict/optimizer

    def adapt(self, lm: torch.nn.Module) -> torch.nn.Module:
        if self.adapter_cfg:
            from pedgpt.adapters import inject_moe_lora
            lm = inject_moe_lora(lm, **self.adapter_cfg)
        return lm

    def configure_model(self) -> None:
        super().configure_model()
        if self.ref_mode == "online" and not self._ref_holder:
            ref = SequenceLogProbs(load_pretrained(self.ref_dir, self.model_dtype, self.trust_remote_code))
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
            from pedgpt.adapters import adapters_disabled
            with adapters_disabled(self.lm):
                logp, _ = self.net(batch["input_ids"], batch["labels"], batch["attention_mask"])
        k = logp.shape[0] // 2
        return logp[:k], logp[k:]

    def compute_loss(self, batch: dict[str, torch.Tensor], split: str):
        if "task_ids" in batch and self.adapter_cfg:
            from pedgpt.adapters import set_task_ids
            set_task_ids(self.lm, batch["task_ids"])
        logp, n = self.forward_logps(batch)
        k = logp.shape[0] // 2
        ref_c, ref_r = self.reference_logps(batch)
        if self.loss_name == "dfpo":
            loss, metrics = dfpo_loss(logp[:k], logp[k:], ref_c, ref_r, sequence_mean_nll(logp[:k], n[:k]),
                                      beta=self.beta, mu=self.mu, label_smoothing=self.label_smoothing)
        else:
            loss, metrics = dpo_loss(logp[:k], logp[k:], ref_c, ref_r, beta=self.beta,
                                     label_smoothing=self.label_smoothing)
        metrics["tokens"] = n.sum()
        metrics["global_loss"] = mean_over_ranks(loss.detach())  # the logged loss is the global batch's
        return loss, metrics

    def on_train_batch_end(self, *args: Any) -> None:
        if self.adapter_cfg:
            from pedgpt.adapters import clear_task_ids
            clear_task_ids(self.lm)
