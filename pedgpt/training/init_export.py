"""The export the first stage starts from: ``init_from``, a real base model, or a fresh tiny model.

A real base model directory is used as downloaded; an official Baichuan2 one is converted once into the cache
(:func:`pedgpt.models.build.local_model_dir`) and every stage, tool and rank uses that copy.

A tiny model is built from ``model.arch`` with a byte-level BPE tokenizer trained in-process on the run's
corpus (cached by corpus fingerprint), and written to ``<run_dir>/init/`` atomically.
"""

from __future__ import annotations

import os
import shutil

from omegaconf import DictConfig

from pedgpt.common.errors import ModelPathError
from pedgpt.data import stage_data as sd
from pedgpt.data.templates import get_template
from pedgpt.models.build import (
    arch_config,
    build_from_config,
    count_parameters,
    local_model_dir,
    resolve_model_path,
)
from pedgpt.models.exports import export_complete, mark_complete
from pedgpt.models.tokenizer import cached_tokenizer


def tokenizer_texts(cfg: DictConfig) -> list[str]:
    """The training texts a tiny model's tokenizer is trained on (CPT text, rendered SFT, preference answers)."""
    tmpl = get_template(cfg.model.template)
    texts = [t.text for t in sd.corpus_part(cfg.data, "cpt", "train")]
    texts += [tmpl.render(r.messages, r.system) for r in sd.corpus_part(cfg.data, "sft", "train")]
    for p in sd.corpus_part(cfg.data, "preference", "train"):
        texts += [p.chosen, p.rejected]
    return texts


def prepare_initial_export(cfg: DictConfig, run_dir: str) -> str:
    """The directory the first stage starts from."""
    if cfg.init_from:
        if not os.path.exists(os.path.join(cfg.init_from, "config.json")):
            raise ModelPathError(f"init_from={cfg.init_from}: not an HF export (no config.json)")
        return local_model_dir(cfg.init_from, cfg.paths.cache_dir)
    if cfg.model.path or not cfg.model.build_from_config:
        return local_model_dir(resolve_model_path(cfg.model), cfg.paths.cache_dir)
    init_dir = os.path.join(run_dir, "init")
    if export_complete(init_dir):
        return init_dir
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
