"""A byte-level BPE tokenizer trained in-process (nothing downloaded), saved with a chat template."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from pedgpt.data.templates import get_template

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")
#: the files that define a tokenizer in an HF directory
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 4000, template: str = "human_assistant", min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as a ``PreTrainedTokenizerFast``.

    Special tokens: ``<pad>`` (0), ``<s>`` (1), ``</s>`` (2), plus the template's own markers, which
    stay single tokens. The template's Jinja form is stored as ``tokenizer.chat_template``.
    """
    tmpl = get_template(template)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS) + list(tmpl.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=list(tmpl.special_tokens) or None,
    )
    return use_template(fast, template)


def use_template(tokenizer: Any, template: str) -> Any:
    """Record the chat template a model is trained with in its tokenizer (``pedgpt_template`` in
    ``tokenizer_config.json`` and the Jinja ``chat_template``), so every export says how to prompt it.

    Raises ``ValueError`` when a marker the template relies on is not one token of this tokenizer.
    """
    tmpl = get_template(template)
    for marker in tmpl.special_tokens:
        ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(
                f"model.template={template}: the marker {marker!r} is {len(ids)} tokens in this "
                "tokenizer, not one; choose the template of the model family"
            )
    tokenizer.chat_template = tmpl.jinja()
    tokenizer.init_kwargs["pedgpt_template"] = template
    return tokenizer


def texts_fingerprint(texts: list[str], **settings: Any) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cached_tokenizer(texts: list[str], cache_dir: str | None, vocab_size: int, template: str) -> tuple[Any, str]:
    """Train (or reuse from ``cache_dir``) a tokenizer for ``texts``; returns (tokenizer, fingerprint)."""
    fp = texts_fingerprint(texts, vocab_size=vocab_size, template=template, kind="bytebpe-v1")
    path = os.path.join(cache_dir, "tokenizers", fp) if cache_dir else None
    if path and os.path.exists(os.path.join(path, "tokenizer.json")):
        return AutoTokenizer.from_pretrained(path), fp
    tok = train_bpe_tokenizer(texts, vocab_size=vocab_size, template=template)
    if path:
        tmp = f"{path}.tmp{os.getpid()}"
        tok.save_pretrained(tmp)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.replace(tmp, path)
        except OSError:  # another process won the race; theirs is identical
            pass
    return tok, fp


def tokenizer_fingerprint(tok_dir: str) -> str:
    """sha256 (16 hex digits) of the tokenizer files in ``tok_dir``."""
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        p = os.path.join(tok_dir, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]
