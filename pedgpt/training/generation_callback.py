"""Generation scores while training: every ``gen.every_n_val`` validations, answer a fixed set of held-out prompts
per task and score the answers with the ``pedgpt.metrics`` torchmetrics classes.

Logged, into every logger, as ``val/gen/<task>/<metric>`` and ``val/gen/<metric>`` (all tasks) for ROUGE-1/2/L,
BLEU-4, GLEU and Distinct-1/2 (the paper's convention, ×100); the samples go to a W&B Table ``val/gen/samples``
(step, task, prompt, reference, prediction) and to ``gen_samples.jsonl`` in the stage directory.

Under data parallelism each rank answers its share of the prompts (shares padded to equal length, so FSDP's
sharded forwards stay in step) and the metric states sync the torchmetrics way; rank 0 writes the samples.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.loggers import WandbLogger

from pedgpt.data.prompts import SamplePrompt
from pedgpt.data.templates import ChatTemplate
from pedgpt.distributed.world import global_rank, is_grouped, world_size
from pedgpt.inference.generation import GenerationSettings, generate_batch
from pedgpt.metrics import ChineseGenerationMetrics
from pedgpt.models.exports import LoadedModel

#: the scores logged per task and overall
GEN_KEYS = ("rouge1", "rouge2", "rougeL", "bleu4", "gleu", "distinct1", "distinct2")
SAMPLES_FILE = "gen_samples.jsonl"


class GenerationScores(L.Callback):
    """Answer ``prompts`` every ``every_n_val`` validation runs (sanity checks excluded) and log their scores."""

    def __init__(
        self,
        tokenizer: Any,
        template: ChatTemplate,
        prompts: list[SamplePrompt],
        every_n_val: int = 1,
        settings: GenerationSettings | None = None,
        batch_size: int = 8,
        metric_tokenizer: str = "jieba",
        out_dir: str | None = None,
    ) -> None:
        if every_n_val < 1:
            raise ValueError(f"gen.every_n_val must be ≥ 1, got {every_n_val}")
        self.tokenizer, self.template, self.prompts = tokenizer, template, prompts
        self.every_n_val, self.batch_size = every_n_val, batch_size
        self.settings = settings or GenerationSettings(max_new_tokens=32)
        self.metric_tokenizer, self.out_dir = metric_tokenizer, out_dir
        self.val_runs = 0
        self.force_next = False  # the pipeline's final validation always scores
        self.last_samples: list[dict[str, Any]] = []
        self.last_scores: dict[str, Any] | None = None
        self.seconds = 0.0  # wall time spent answering and scoring, over the whole stage (its cost in report.json)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.prompts:
            return
        self.val_runs += 1
        if self.val_runs % self.every_n_val and not self.force_next:
            return
        self.force_next = False
        t0 = time.perf_counter()
        mine = self._share()
        answers = self._generate(pl_module, [self.prompts[i] for i in mine])
        samples = [self._sample(trainer, i, a) for i, a in zip(mine, answers)]
        seen: set[int] = set()
        own = [s for s in samples if not (s["i"] in seen or seen.add(s["i"]))]  # padding repeats are not scored
        scores = self._score(pl_module, own)
        everyone = self._gather(own)
        self.last_samples = sorted({s["i"]: s for s in everyone}.values(), key=lambda s: s["i"])
        if trainer.is_global_zero:
            self._write(trainer)
        self.seconds += time.perf_counter() - t0
        self.last_scores = {"step": trainer.global_step, **scores, "seconds_total": round(self.seconds, 3)}

    # -- steps -----------------------------------------------------------------------------------------
    def _share(self) -> list[int]:
        """This rank's prompt indices, padded (by repeating its first) to the longest share."""
        n, ws, rank = len(self.prompts), world_size(), global_rank() if is_grouped() else 0
        share = list(range(rank, n, ws))
        longest = -(-n // ws)
        return share + [share[0] if share else 0] * (longest - len(share))

    def _generate(self, pl_module: L.LightningModule, prompts: list[SamplePrompt]) -> list[str]:
        model = pl_module.lm
        net = getattr(pl_module, "net", None)
        was_training = model.training
        model.eval()
        unshard = getattr(net, "unshard", None)  # FSDP2: the root unit (embedding, head) is gathered by hand
        if unshard is not None:
            unshard()
        try:
            loaded = LoadedModel(model, self.tokenizer, self.template, "<training>")
            return generate_batch(
                loaded,
                [p.messages for p in prompts],
                self.settings,
                systems=[p.system for p in prompts],
                tasks=[p.task for p in prompts],
                batch_size=self.batch_size,
            )
        finally:
            if unshard is not None:
                net.reshard()
            model.train(was_training)

    def _sample(self, trainer: L.Trainer, i: int, answer: str) -> dict[str, Any]:
        p = self.prompts[i]
        return {
            "i": i,
            "step": trainer.global_step,
            "task": p.task,
            "prompt": p.messages[-1].content,
            "reference": p.reference,
            "prediction": answer,
        }

    def _score(self, pl_module: L.LightningModule, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Per task and overall: torchmetrics states updated with this rank's answers, synced on compute."""
        tasks = sorted({p.task for p in self.prompts if p.reference is not None})
        metrics = {t: ChineseGenerationMetrics(tokenizer=self.metric_tokenizer) for t in ["all", *tasks]}
        for s in samples:
            if s["reference"] is not None:
                for key in ("all", s["task"]):
                    metrics[key].update([s["prediction"]], [s["reference"]])
        out: dict[str, Any] = {"by_task": {}}
        for key, metric in metrics.items():
            if not any(p.reference is not None and (key == "all" or p.task == key) for p in self.prompts):
                continue
            values = {k: float(v) for k, v in metric.compute().items() if k in GEN_KEYS}
            prefix = "val/gen" if key == "all" else f"val/gen/{key}"
            for k, v in values.items():
                pl_module.log(f"{prefix}/{k}", v, on_epoch=True, sync_dist=False)  # already synced
            if key == "all":
                out["overall"] = values
            else:
                out["by_task"][key] = values
        return out

    @staticmethod
    def _gather(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not is_grouped() or world_size() == 1:
            return samples
        parts: list[Any] = [None] * world_size()
        dist.all_gather_object(parts, samples)
        return [s for part in parts for s in part]

    def _write(self, trainer: L.Trainer) -> None:
        rows = [{k: v for k, v in s.items() if k != "i"} for s in self.last_samples]
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(os.path.join(self.out_dir, SAMPLES_FILE), "a", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        columns = ["step", "task", "prompt", "reference", "prediction"]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="val/gen/samples", columns=columns, data=[[r[c] for c in columns] for r in rows])
