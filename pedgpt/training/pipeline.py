"""The pipeline: each stage of ``cfg.pipeline`` in order, each starting from the previous stage's HF export.

Stage-agnostic: what differs between stages comes from the registry (:mod:`pedgpt.stages.registry`).
Every rank of a multi-process run executes this whole file (Lightning re-launches the command), so work
with side effects — tokenizer training, the initial export, reference caches, exports, reports — is written
atomically and only where it is missing, or on rank 0 behind a barrier.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig, open_dict

from pedgpt.common.errors import CheckpointError, DataError
from pedgpt.config.sweep import swept_overrides
from pedgpt.data.datamodule import ExamplesDataModule
from pedgpt.data.templates import get_template
from pedgpt.distributed.world import is_rank_zero
from pedgpt.inference.generation import GenerationSettings
from pedgpt.models.exports import export_complete, mark_complete
from pedgpt.models.tokenizer import load_tokenizer, use_template
from pedgpt.stages.examples import stage_examples
from pedgpt.stages.registry import ReportSink, Stage, StageData, get_stage
from pedgpt.training.callbacks import LossHistory, Throughput
from pedgpt.training.checkpointing import (
    PeriodicCheckpoint,
    checkpoint_step,
    find_last_checkpoint,
    step_checkpoints,
    verify_checkpoint,
)
from pedgpt.training.final_eval import evaluate_final
from pedgpt.training.generation_callback import GenerationScores
from pedgpt.training.init_export import prepare_initial_export
from pedgpt.training.loggers import build_loggers, close_loggers
from pedgpt.training.report import print_report, write_report
from pedgpt.training.trainer import build_trainer

log = logging.getLogger("pedgpt")


def resume_checkpoint(cfg: DictConfig, stage_dir: str) -> str | None:
    """The checkpoint a stage resumes from, verified against its checksums: ``ckpt_path=last`` → the newest one
    that verifies (a damaged newer one is reported and skipped), or None; an explicit path must verify."""
    if cfg.ckpt_path is None:
        return None
    if cfg.ckpt_path != "last":
        if not os.path.exists(cfg.ckpt_path):
            raise CheckpointError(f"ckpt_path={cfg.ckpt_path}: {cfg.ckpt_path} does not exist")
        verify_checkpoint(cfg.ckpt_path)
        return cfg.ckpt_path
    directory = os.path.join(stage_dir, "checkpoints")
    newest = find_last_checkpoint(directory)
    candidates = [newest] if newest else []
    candidates += [p for _, p in reversed(step_checkpoints(directory)) if p != newest]
    problems = []
    for path in candidates:
        try:
            verify_checkpoint(path)
        except CheckpointError as e:
            log.warning("%s; trying an older checkpoint", e)
            problems.append(str(e))
            continue
        if path != newest:
            log.warning("resuming from %s, the newest checkpoint that verifies", path)
        return path
    if candidates:
        raise CheckpointError(f"no checkpoint in {directory} verifies; the newest: {problems[0]}")
    return None


def checked_examples(stage: Stage, data: StageData) -> StageData:
    """A stage needs training examples and validation examples; say why when there are none."""
    name, skipped = stage.name, data.info.get("skipped")
    if not data.train:
        raise DataError(
            f"{name}: no training examples left after encoding (skipped: {skipped or 'none'}; "
            f"raise {stage.key()}.max_len={stage.st.max_len} or check the data)"
        )
    if not data.val:
        raise DataError(
            f"{name}: no validation examples (the dev split is empty or everything in it was skipped: "
            f"{skipped or 'nothing skipped'}); a stage needs dev data to report val_loss"
        )
    return data


def generation_scores(cfg: DictConfig, stage: Stage, tokenizer: Any, stage_dir: str) -> GenerationScores | None:
    """The generation-scores callback of a stage that teaches instruction following (``gen.enabled``)."""
    g = cfg.gen
    if not g.enabled or not stage.generates:
        return None
    return GenerationScores(
        tokenizer,
        get_template(cfg.model.template),
        stage.sample_prompts(int(g.samples_per_task)),
        every_n_val=int(g.every_n_val),
        settings=GenerationSettings(max_new_tokens=int(g.max_new_tokens)),
        batch_size=int(g.batch_size),
        metric_tokenizer=g.metric_tokenizer,
        out_dir=stage_dir,
    )


def run_stage(
    name: str,
    cfg: DictConfig,
    init_dir: str,
    run_dir: str,
    group: str,
    ckpt: str | None = None,
    swept: list[str] | None = None,
) -> dict[str, Any]:
    """Train one stage from the export ``init_dir``; write its export and ``result.json``; return the result."""
    t0 = time.time()
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    stage = get_stage(name)(cfg)
    stage_dir = os.path.join(run_dir, name)
    export_dir = os.path.join(stage_dir, "export")
    os.makedirs(stage_dir, exist_ok=True)
    tokenizer = use_template(load_tokenizer(init_dir), cfg.model.template)
    data = checked_examples(stage, stage_examples(stage, tokenizer))
    result: dict[str, Any] = {"data": data.info, **stage.prepare(data, init_dir, tokenizer)}
    st = stage.st
    dm = ExamplesDataModule(
        data.train,
        data.val,
        data.collate,
        int(st.batch_size),
        int(st.val_batch_size),
        int(cfg.seed),
        data.info,
        max_len=int(st.max_len),
        accumulate=int(cfg.trainer.accumulate_grad_batches),
    )
    module = stage.module(init_dir)
    loggers = build_loggers(cfg, name, run_dir, group, checkpoint_step(ckpt) if ckpt else None, swept)
    history = LossHistory()
    checkpoints = PeriodicCheckpoint(
        os.path.join(stage_dir, "checkpoints"), int(cfg.checkpoint_every_n_steps), int(cfg.keep_last_checkpoints)
    )
    callbacks: list = [history, Throughput(), checkpoints]
    gen = generation_scores(cfg, stage, tokenizer, stage_dir)
    if gen is not None:
        callbacks.append(gen)
    if cfg.progress_bar:
        callbacks.append(RichProgressBar(leave=True))
    trainer = build_trainer(cfg, stage.key(), stage_dir, loggers, callbacks)
    if ckpt:
        log.info("%s: resuming from %s", name, ckpt)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=True)
    if gen is not None:
        gen.force_next = True  # the final weights always get their generation scores
    val_metrics = {k: float(v) for k, v in trainer.validate(module, datamodule=dm, verbose=False)[0].items()}
    tmp = f"{export_dir}.tmp"
    if trainer.is_global_zero:
        shutil.rmtree(tmp, ignore_errors=True)
    module.export(tmp, tokenizer, writer=trainer.is_global_zero)  # collective when sharded
    if trainer.is_global_zero:
        mark_complete(tmp, stage=name, init_dir=os.path.abspath(init_dir))
        shutil.rmtree(export_dir, ignore_errors=True)
        os.replace(tmp, export_dir)
    trainer.strategy.barrier()
    first, last = history.first_last(0.1)
    t = module.telemetry
    result.update(
        train_loss_first=first,
        train_loss_last=last,
        val_loss=val_metrics.get("val/loss"),
        export_dir=export_dir,
        steps=trainer.global_step,
        params_total=t.params_total,
        params_trainable=t.params_trainable,
    )
    if gen is not None and gen.last_scores is not None:
        result["gen_scores"] = gen.last_scores
    result.update(stage.report(module, val_metrics, data, ReportSink(stage_dir, loggers, trainer.is_global_zero)))
    close_loggers(loggers)
    result["wall_seconds"] = round(time.time() - t0, 2)
    result["resumed_from"] = ckpt
    result["nonfinite_skipped"] = t.nonfinite_skipped
    if trainer.is_global_zero:
        with open(os.path.join(stage_dir, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result


def _without_ckpt_path(cfg: DictConfig) -> DictConfig:
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.ckpt_path = None
    return cfg


def _anything_to_resume(cfg: DictConfig, run_dir: str) -> bool:
    for name in cfg.pipeline:
        stage_dir = os.path.join(run_dir, name)
        if export_complete(os.path.join(stage_dir, "export")) or find_last_checkpoint(
            os.path.join(stage_dir, "checkpoints")
        ):
            return True
    return False


def run_group(run_dir: str) -> tuple[str, list[str]]:
    """The W&B group — the sweep's directory name (a new one per sweep invocation), else the run directory's —
    and the overrides this job's sweep varies."""
    try:
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return os.path.basename(os.path.normpath(hc.sweep.dir)), swept_overrides(list(hc.overrides.task))
    except ValueError:
        pass
    return os.path.basename(os.path.normpath(run_dir)), []


def run_pipeline(cfg: DictConfig, run_dir: str) -> dict[str, Any]:
    t0 = time.time()
    torch.set_float32_matmul_precision("high")
    os.makedirs(run_dir, exist_ok=True)
    group, swept = run_group(run_dir)
    group = cfg.logger.group or group
    report: dict[str, Any] = {
        "pipeline": list(cfg.pipeline),
        "run_dir": os.path.abspath(run_dir),
        "group": group,
        "sweep": swept,
    }
    resuming = cfg.ckpt_path is not None
    if resuming and cfg.ckpt_path == "last" and not _anything_to_resume(cfg, run_dir):
        raise CheckpointError(
            f"ckpt_path=last: no checkpoint and no finished stage under {run_dir}; nothing to resume "
            "(pass the run directory of the interrupted run as hydra.run.dir, or drop ckpt_path)"
        )
    prev = prepare_initial_export(cfg, run_dir)
    report["init_dir"] = prev
    explicit = cfg.ckpt_path not in (None, "last")  # a given checkpoint belongs to the first unfinished stage
    for name in cfg.pipeline:
        stage_dir = os.path.join(run_dir, name)
        done = os.path.join(stage_dir, "result.json")
        if resuming and export_complete(os.path.join(stage_dir, "export")) and os.path.exists(done):
            log.info("%s: export complete, skipping the stage", name)
            with open(done) as f:
                report[name] = json.load(f)
        else:
            report[name] = run_stage(name, cfg, prev, run_dir, group, resume_checkpoint(cfg, stage_dir), swept)
            if explicit:
                cfg = _without_ckpt_path(cfg)
        prev = report[name]["export_dir"]
    if cfg.evaluate and is_rank_zero():
        report["evaluation"] = evaluate_final(cfg, report, run_dir)
    report["wall_seconds"] = round(time.time() - t0, 2)
    if is_rank_zero():
        write_report(run_dir, report)
        print_report(report)
    return report
