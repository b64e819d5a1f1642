"""The four-stage pipeline: each stage starts from the previous stage's HF export.

Every rank of a multi-process run executes this whole file (Lightning re-launches the command), so
work with side effects — tokenizer training, the initial export, reference caches, exports, reports —
is written atomically and only where it is missing, or on rank 0 behind a barrier.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from pedgpt.callbacks import LossHistory, Throughput
from pedgpt.checkpointing import CheckpointError, PeriodicCheckpoint, checkpoint_step, find_last_checkpoint, verify_checkpoint
from pedgpt.loggers import build_loggers, close_loggers
from pedgpt.models.build import arch_config, build_from_config, count_parameters, resolve_model_path
from pedgpt.report import print_report, router_heatmap, write_report
from pedgpt.stages import factory

log = logging.getLogger("pedgpt")
COMPLETE = "pedgpt_complete.json"
EVAL_KEYS = ("rouge1", "rougeL", "bleu4", "gleu", "distinct2", "accuracy", "reward_accuracy")


def global_rank() -> int:
    """This process's global rank from the launcher's environment (torchrun, SLURM or Lightning)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return int(os.environ.get("NODE_RANK", "0")) * int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1) + \
        int(os.environ.get("LOCAL_RANK", "0"))


def is_rank_zero() -> bool:
    return global_rank() == 0


def export_complete(path: str) -> bool:
    return os.path.exists(os.path.join(path, COMPLETE))


def mark_complete(path: str, **info: Any) -> None:
    with open(os.path.join(path, COMPLETE), "w") as f:
        json.dump(info, f, indent=1)


def tokenizer_fingerprint(tok_dir: str) -> str:
    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"):
        p = os.path.join(tok_dir, name)
        if os.path.exists(p):
            h.update(open(p, "rb").read())
    return h.hexdigest()[:16]


def tokenizer_texts(cfg: DictConfig) -> list[str]:
    from pedgpt.data import stage_data as sd
    from pedgpt.data.templates import get_template

    tmpl = get_template(cfg.model.template)
    texts = [t.text for t in sd.corpus_part(cfg.data, "cpt", "train")]
    texts += [tmpl.render(r.messages, r.system) for r in sd.corpus_part(cfg.data, "sft", "train")]
    for p in sd.corpus_part(cfg.data, "preference", "train"):
        texts += [p.chosen, p.rejected]
    return texts


def prepare_initial_export(cfg: DictConfig, run_dir: str) -> str:
    """The directory the first stage starts from: ``init_from``, a real base model, or a fresh tiny model."""
    if cfg.init_from:
        if not os.path.exists(os.path.join(cfg.init_from, "config.json")):
            raise FileNotFoundError(f"init_from={cfg.init_from}: not an HF export (no config.json)")
        return cfg.init_from
    if cfg.model.path or not cfg.model.build_from_config:
        return resolve_model_path(cfg.model)
    init_dir = os.path.join(run_dir, "init")
    if export_complete(init_dir):
        return init_dir
    from pedgpt.models.tokenizer import cached_tokenizer

    tok, _ = cached_tokenizer(tokenizer_texts(cfg), cfg.paths.cache_dir, int(cfg.model.vocab_size), cfg.model.template)
    model = build_from_config(arch_config(cfg.model, len(tok), tok), seed=int(cfg.seed))
    tmp = f"{init_dir}.tmp{os.getpid()}"
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    mark_complete(tmp, kind="init", params=count_parameters(model)[0])
    if os.path.exists(init_dir):
        shutil.rmtree(init_dir, ignore_errors=True)
    os.replace(tmp, init_dir)
    return init_dir


def build_trainer(cfg: DictConfig, name: str, stage_dir: str, loggers: list, callbacks: list) -> L.Trainer:
    from pedgpt.distributed.strategy import build_strategy

    tr = OmegaConf.to_container(cfg.trainer, resolve=True)
    st = cfg[name]
    for k in ("max_steps", "log_every_n_steps", "val_check_interval"):
        if tr.get(k) is None:
            tr[k] = st[k]
    tr.pop("fsdp", None)
    tr.pop("gradient_clip_val", None)  # applied by the module (manual optimisation, with the non-finite guard)
    tr.pop("accumulate_grad_batches", None)
    strategy = build_strategy(tr.pop("strategy"), tr, cfg)
    tr = {k: v for k, v in tr.items() if v is not None}
    return L.Trainer(**tr, strategy=strategy, logger=loggers or False, callbacks=callbacks,
                     default_root_dir=stage_dir, check_val_every_n_epoch=None, num_sanity_val_steps=0,
                     enable_checkpointing=False, enable_model_summary=False, use_distributed_sampler=False)


def inference_device(cfg: DictConfig) -> torch.device:
    """Where one-off inference passes (the DFPO reference) run: this rank's GPU when training uses GPUs."""
    if cfg.trainer.accelerator in ("cuda", "gpu", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def attach_reference(cfg: DictConfig, train: list, val: list, ref_dir: str, pad_id: int) -> str:
    """Load or compute (once, then cache) the reference log-probs of every pair; returns 'hit' or 'miss'."""
    from pedgpt.models.build import load_pretrained
    from pedgpt.models.logps import SequenceLogProbs
    from pedgpt.stages import ref_cache as rc

    st = cfg.dfpo
    fp = rc.fingerprint(train + val, template=cfg.model.template, tokenizer_fp=tokenizer_fingerprint(ref_dir),
                        max_len=int(st.max_len), truncation="left", dtype=cfg.model.dtype, ref_dir=ref_dir,
                        cache_dir=cfg.paths.cache_dir)
    cached = rc.load_cached(cfg.paths.cache_dir, fp)
    status = "hit" if cached is not None else "miss"
    grouped = torch.distributed.is_available() and torch.distributed.is_initialized()
    if cached is None and (is_rank_zero() or not grouped):
        from pedgpt.stages.base import DTYPES
        ref = SequenceLogProbs(load_pretrained(ref_dir, DTYPES[cfg.model.dtype], bool(cfg.model.trust_remote_code)))
        ref.to(inference_device(cfg))
        cached = rc.compute_reference_logps(ref, train + val, pad_id, int(st.val_batch_size))
        del ref
        if is_rank_zero():
            rc.save_cached(cfg.paths.cache_dir, fp, *cached)
    if grouped:  # the other ranks wait for rank 0's cache instead of each loading the reference
        torch.distributed.barrier()
        if cached is None:
            cached = rc.load_cached(cfg.paths.cache_dir, fp)
    log.info("dfpo reference cache %s (%s)", status, fp)
    chosen, rejected = cached
    rc.attach(train, chosen[:len(train)], rejected[:len(train)])
    rc.attach(val, chosen[len(train):], rejected[len(train):])
    return status


def resume_checkpoint(cfg: DictConfig, stage_dir: str) -> str | None:
    """The checkpoint a stage resumes from: ``ckpt_path=last`` → the newest complete one (or None)."""
    if cfg.ckpt_path is None:
        return None
    path = find_last_checkpoint(os.path.join(stage_dir, "checkpoints")) if cfg.ckpt_path == "last" else cfg.ckpt_path
    if path is None:
        return None
    if not os.path.exists(path):
        raise CheckpointError(f"ckpt_path={cfg.ckpt_path}: {path} does not exist")
    verify_checkpoint(path)
    return path


def run_stage(name: str, cfg: DictConfig, init_dir: str, run_dir: str, group: str,
              ckpt: str | None = None) -> dict[str, Any]:
    from transformers import AutoTokenizer

    t0 = time.time()
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    stage_dir = os.path.join(run_dir, name)
    export_dir = os.path.join(stage_dir, "export")
    os.makedirs(stage_dir, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    train, val, collate, info = factory.stage_examples(name, cfg, tokenizer)
    result: dict[str, Any] = {"data": info}
    if name == "dfpo" and cfg.dfpo.ref == "cached":
        result["reference_cache"] = attach_reference(cfg, train, val, init_dir, tokenizer.pad_token_id)
    dm = factory.build_datamodule(name, cfg, train, val, collate, info)
    module = factory.build_module(name, cfg, init_dir, ref_dir=init_dir)
    loggers = build_loggers(cfg, name, run_dir, group, resume_step=checkpoint_step(ckpt) if ckpt else None)
    history = LossHistory()
    checkpoints = PeriodicCheckpoint(os.path.join(stage_dir, "checkpoints"), int(cfg.checkpoint_every_n_steps),
                                     int(cfg.keep_last_checkpoints))
    callbacks: list = [history, Throughput(), checkpoints]
    if cfg.progress_bar:
        from lightning.pytorch.callbacks import RichProgressBar
        callbacks.append(RichProgressBar(leave=True))
    trainer = build_trainer(cfg, name, stage_dir, loggers, callbacks)
    if ckpt:
        log.info("%s: resuming from %s", name, ckpt)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=True)
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
    result.update(train_loss_first=first, train_loss_last=last, val_loss=val_metrics.get("val/loss"),
                  export_dir=export_dir, steps=trainer.global_step,
                  params_total=getattr(module, "params_total", None),
                  params_trainable=getattr(module, "params_trainable", None))
    if name == "dfpo":
        result.update(val_reward_accuracy=val_metrics.get("val/rewards/accuracies"),
                      val_reward_margin=val_metrics.get("val/rewards/margins"),
                      val_following_nll=val_metrics.get("val/loss/following"), val_pairs=len(val))
    if name == "mole" and getattr(module, "val_task_loss", None):
        result["val_loss_by_task"] = module.val_task_loss
    if name == "mole" and module.val_router:
        result["router_weights"] = module.val_router["gate_mean"]
        result["router_entropy"] = module.val_router["entropy"]
        if trainer.is_global_zero:
            result["router_heatmap"] = router_heatmap(result["router_weights"], os.path.join(stage_dir, "router_heatmap.png"))
            for lg in loggers:
                if hasattr(lg, "log_image"):
                    lg.log_image(key="val/router/heatmap", images=[result["router_heatmap"]])
    close_loggers(loggers)
    result["wall_seconds"] = round(time.time() - t0, 2)
    result["resumed_from"] = ckpt
    result["nonfinite_skipped"] = module.nonfinite_skipped
    if trainer.is_global_zero:
        with open(os.path.join(stage_dir, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result


def evaluate_final(cfg: DictConfig, report: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Score the run's final export on the evaluation suites (``evaluate=true``); adds a report section."""
    from pedgpt.evaluate import evaluate_export

    final = report[cfg.pipeline[-1]]["export_dir"]
    overrides: dict[str, Any] = {"generation": {"max_new_tokens": int(cfg.eval_max_new_tokens)}}
    if "sft" in report and cfg.pipeline[-1] != "sft":  # reward accuracy of the aligned model against the SFT model
        overrides["preference"] = {"reference": report["sft"]["export_dir"]}
    out_dir = os.path.join(run_dir, "evaluation")
    metrics = evaluate_export(final, list(cfg.eval_suites), cfg.data.root, out_dir, limit=cfg.eval_limit, **overrides)
    lines = ["## Evaluation of the final export", "", f"`{final}` — details in `evaluation/report.md`", "",
             "| suite | " + " | ".join(EVAL_KEYS) + " |", "|---" * (len(EVAL_KEYS) + 1) + "|"]
    for suite, m in metrics.get("suites", {}).items():
        cells = [m.get(k) for k in EVAL_KEYS]
        lines.append(f"| {suite} | " + " | ".join("" if c is None else f"{c:.2f}" if isinstance(c, float) else str(c)
                                                     for c in cells) + " |")
    report.setdefault("markdown_sections", []).append("\n".join(lines))
    return metrics


def _without_ckpt_path(cfg: DictConfig) -> DictConfig:
    from omegaconf import open_dict
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.ckpt_path = None
    return cfg


def _anything_to_resume(cfg: DictConfig, run_dir: str) -> bool:
    for name in cfg.pipeline:
        stage_dir = os.path.join(run_dir, name)
        if export_complete(os.path.join(stage_dir, "export")) or find_last_checkpoint(os.path.join(stage_dir, "checkpoints")):
            return True
    return False


def run_group(run_dir: str) -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return os.path.basename(os.path.normpath(hc.sweep.dir))
    except ValueError:
        pass
    return os.path.basename(os.path.normpath(run_dir))


def run_pipeline(cfg: DictConfig, run_dir: str) -> dict[str, Any]:
    t0 = time.time()
    torch.set_float32_matmul_precision("high")
    os.makedirs(run_dir, exist_ok=True)
    group = cfg.logger.group or run_group(run_dir)
    report: dict[str, Any] = {"pipeline": list(cfg.pipeline), "run_dir": os.path.abspath(run_dir), "group": group}
    resuming = cfg.ckpt_path is not None
    if resuming and cfg.ckpt_path == "last" and not _anything_to_resume(cfg, run_dir):
        raise CheckpointError(f"ckpt_path=last: no checkpoint and no finished stage under {run_dir}; nothing to resume "
                              "(pass the run directory of the interrupted run as hydra.run.dir, or drop ckpt_path)")
    prev = prepare_initial_export(cfg, run_dir)
    report["init_dir"] = prev
    explicit = cfg.ckpt_path not in (None, "last")  # a given checkpoint belongs to the first unfinished stage
    for name in cfg.pipeline:
        stage_dir = os.path.join(run_dir, name)
        if resuming and export_complete(os.path.join(stage_dir, "export")) and os.path.exists(os.path.join(stage_dir, "result.json")):
            log.info("%s: export complete, skipping the stage", name)
            report[name] = json.load(open(os.path.join(stage_dir, "result.json")))
        else:
            report[name] = run_stage(name, cfg, prev, run_dir, group, resume_checkpoint(cfg, stage_dir))
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
