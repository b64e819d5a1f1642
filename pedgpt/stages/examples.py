"""A stage's examples for a run: from its token store (built on the first run of a data, tokenizer, template and
``max_len``; memory-mapped on every later one), or built in memory by a stage that has no :meth:`Stage.encoding`."""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
from types import ModuleType
from typing import Any

from pedgpt.data import encode, packing, schema, stage_data, templates, token_store
from pedgpt.data.stage_data import data_identity
from pedgpt.data.token_store import open_store
from pedgpt.distributed.world import is_rank_zero
from pedgpt.models.tokenizer import tokenizer_identity
from pedgpt.stages.registry import Stage, StageData

#: the modules whose code turns records into stored examples (their source is part of every store's key)
ENCODING_MODULES = (encode, templates, stage_data, packing, token_store, schema)


def code_digest(modules: tuple[ModuleType, ...]) -> str:
    """sha256 (16 hex digits) of the source of ``modules``: an edit to the encoding code makes stores stale."""
    h = hashlib.sha256()
    for m in modules:
        h.update(inspect.getsource(m).encode("utf-8"))
    return h.hexdigest()[:16]


def store_material(stage: Stage, tokenizer: Any) -> dict[str, Any]:
    """Everything a stage's encoded examples depend on (the token store's key, with the stage's name): its
    encoding settings, ``max_len``, the template, the tokenizer, the data's identity and the encoding code (the
    shared modules and the stage's own)."""
    return {
        "code": code_digest((*ENCODING_MODULES, sys.modules[type(stage).encoding.__module__])),
        "settings": stage.store_settings(),
        "max_len": int(stage.st.max_len),
        "template": stage.cfg.model.template,
        "tokenizer": tokenizer_identity(tokenizer),
        "data": data_identity(stage.cfg.data, stage.corpus_parts),
    }


def stage_examples(stage: Stage, tokenizer: Any) -> StageData:
    """The stage's train / val examples and their collate function (see the module docstring). Stages that
    share settings (a variant and its stage) share a store."""
    if type(stage).encoding is Stage.encoding:
        return stage.examples(tokenizer)
    store = open_store(
        stage.cfg.paths.cache_dir,
        stage.key(),
        store_material(stage, tokenizer),
        functools.partial(stage.encoding, tokenizer),
        num_proc=int(stage.cfg.data.num_proc),
        pack_len=stage.pack_len,
        say=print if is_rank_zero() else lambda line: None,
    )
    train, val = stage.from_store(store)
    return stage.stage_data(train, val, {**store.info, "token_store": store.key}, tokenizer)
