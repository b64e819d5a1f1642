"""Generation during training: every N validation runs, answer a fixed handful of prompts per task.

:class:`GenerationSamples` generates greedy answers (``pedgpt.inference.generation.generate_batch``, task ids set for
task-aware adapters) for fixed prompts, logs ``val/gen/<key>`` (the paper's metrics, ``ChineseGenerationMetrics``,
over the prompts that have a reference) and, when a ``WandbLogger`` is attached, a W&B table
``val/gen/samples`` (step, task, prompt, reference, prediction, gleu). Every rank generates the same
prompts, so FSDP-sharded forwards stay in step; only rank 0 writes the table.

The default prompts are the first ``per_task`` dev conversations of each pediatric task of the bundled demo
corpus (``demo_prompts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L

from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.schema import PEDIATRIC_TASKS, Message
from pedgpt.data.templates import ChatTemplate
from pedgpt.inference.generation import GenerationSettings, generate_batch
from pedgpt.metrics import KEYS, ChineseGenerationMetrics
from pedgpt.models.exports import LoadedModel, template_of


@dataclass(frozen=True)
class SamplePrompt:
    task: str
    messages: list[Message]
    reference: str | None = None
    system: str | None = None


def demo_prompts(per_task: int = 2, tasks: tuple[str, ...] = PEDIATRIC_TASKS) -> list[SamplePrompt]:
    """The first ``per_task`` single-turn dev conversations of each task of the demo corpus."""
    out: list[SamplePrompt] = []
    for task in tasks:
        recs = [r for r in build_demo_corpus()["sft"] if r.split == "dev" and r.task == task and len(r.messages) == 2]
        out += [SamplePrompt(task, r.messages[:1], r.messages[1].content, r.system) for r in recs[:per_task]]
    return out


class GenerationSamples(L.Callback):
    """Every ``every_n_val`` validation runs (sanity check excluded), generate answers and log them."""

    def __init__(
        self,
        tokenizer: Any,
        prompts: list[SamplePrompt] | None = None,
        every_n_val: int = 1,
        settings: GenerationSettings | None = None,
        batch_size: int = 8,
        template: ChatTemplate | None = None,
        metric_tokenizer: str = "jieba",
        model_attr: str = "lm",
    ) -> None:
        if every_n_val < 1:
            raise ValueError(f"every_n_val must be ≥ 1, got {every_n_val}")
        self.tokenizer = tokenizer
        self.template = template or template_of(tokenizer)
        self.prompts = prompts if prompts is not None else demo_prompts()
        self.every_n_val = every_n_val
        self.settings = settings or GenerationSettings(max_new_tokens=64)
        self.batch_size = batch_size
        self.metric_tokenizer = metric_tokenizer
        self.model_attr = model_attr
        self.val_runs = 0
        self.last_samples: list[dict[str, Any]] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.prompts:
            return
        self.val_runs += 1
        if self.val_runs % self.every_n_val:
            return
        model = getattr(pl_module, self.model_attr)
        was_training = model.training
        model.eval()
        try:
            loaded = LoadedModel(model, self.tokenizer, self.template, "<training>")
            preds = generate_batch(
                loaded,
                [p.messages for p in self.prompts],
                self.settings,
                systems=[p.system for p in self.prompts],
                tasks=[p.task for p in self.prompts],
                batch_size=self.batch_size,
            )
        finally:
            model.train(was_training)
        self.last_samples = [
            {
                "step": trainer.global_step,
                "task": p.task,
                "prompt": p.messages[-1].content,
                "reference": p.reference,
                "prediction": pred,
            }
            for p, pred in zip(self.prompts, preds)
        ]
        scored = [s for s in self.last_samples if s["reference"] is not None]
        if scored:
            self._log_scores(pl_module, scored)
        if trainer.is_global_zero:
            self._log_table(trainer)

    def _log_scores(self, pl_module: L.LightningModule, scored: list[dict[str, Any]]) -> None:
        # every rank generated the same answers: no cross-rank sync needed
        metric = ChineseGenerationMetrics(tokenizer=self.metric_tokenizer, sync_on_compute=False)
        metric.update([s["prediction"] for s in scored], [s["reference"] for s in scored])
        for key, value in metric.compute().items():
            pl_module.log(f"val/gen/{key}", float(value), sync_dist=False)
        gleu = metric.per_sample()[:, KEYS.index("gleu")]
        for s, g in zip(scored, gleu.tolist()):
            s["gleu"] = 100.0 * g

    def _log_table(self, trainer: L.Trainer) -> None:
        from lightning.pytorch.loggers import WandbLogger

        columns = ["step", "task", "prompt", "reference", "prediction", "gleu"]
        data = [[s.get(c) for c in columns] for s in self.last_samples]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="val/gen/samples", columns=columns, data=data)
