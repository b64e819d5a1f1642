"""A byte-level BPE tokenizer trained in-process (nothing downloaded), saved with a chat template.

Long documents: BPE training cost grows much faster than linearly with the length of a pre-token (a run
of letters without whitespace or punctuation, which a Chinese text without punctuation is as a whole), so
one 1 MB document used to keep the trainer busy for hours. :func:`training_pieces` therefore feeds the
trainer pieces of at most :data:`PIECE_CHARS` characters, and at most :data:`DOC_CHARS` characters of any
one document (evenly spaced pieces across it, deterministic): a 1 MB document trains in about the time of
its first ``DOC_CHARS`` characters. Documents up to ``PIECE_CHARS`` characters are used whole. Training
prints one line to stderr (documents, characters, how many were split or sampled) and shows the
``tokenizers`` progress bar on a terminal.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from pedgpt.common.errors import ModelPathError
from pedgpt.data.templates import get_template

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")
#: longest piece of text the BPE trainer sees (longer documents are cut into pieces of this size)
PIECE_CHARS = 1000
#: most characters of one document used for training (evenly spaced pieces when it is longer)
DOC_CHARS = 50_000
#: the files that define a tokenizer in an HF directory
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
#: any one of these file sets is a loadable tokenizer (fast; sentencepiece; byte-level BPE vocabulary)
TOKENIZER_SETS = (("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"))


def tokenizer_problem(model_dir: str) -> str | None:
    """None when ``model_dir`` holds a tokenizer; otherwise one line naming the folder and the missing files."""
    if any(all(os.path.exists(os.path.join(model_dir, f)) for f in files) for files in TOKENIZER_SETS):
        return None
    return (
        f"{model_dir}: no tokenizer files (missing tokenizer.json, or tokenizer.model, or vocab.json with merges.txt); "
        "copy them from the model it was trained from"
    )


def load_tokenizer(model_dir: str, trust_remote_code: bool = False) -> Any:
    """``AutoTokenizer`` of ``model_dir``, after checking its tokenizer files are there (without them transformers
    asks to install sentencepiece or tiktoken instead of naming the folder)."""
    problem = tokenizer_problem(model_dir)
    if problem:
        raise ModelPathError(problem)
    return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)


def training_pieces(
    texts: Iterable[str], piece_chars: int = PIECE_CHARS, doc_chars: int = DOC_CHARS, tally: dict | None = None
) -> Iterator[str]:
    """What the BPE trainer sees of ``texts``: each document whole when it has at most ``piece_chars``
    characters; otherwise cut into ``piece_chars`` pieces, of which at most ``doc_chars // piece_chars``
    evenly spaced ones are kept. ``tally`` counts ``docs``, ``chars``, ``split`` and ``sampled``."""
    tally = tally if tally is not None else {}
    for key in ("docs", "chars", "split", "sampled"):
        tally.setdefault(key, 0)
    keep = max(1, doc_chars // piece_chars)
    for text in texts:
        tally["docs"] += 1
        tally["chars"] += len(text)
        if len(text) <= piece_chars:
            yield text
            continue
        tally["split"] += 1
        starts: list[int] = list(range(0, len(text), piece_chars))
        if len(starts) > keep:
            tally["sampled"] += 1
            starts = [starts[i * len(starts) // keep] for i in range(keep)]
        for start in starts:
            yield text[start : start + piece_chars]


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4000,
    template: str = "human_assistant",
    min_frequency: int = 2,
    progress: bool | None = None,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as a ``PreTrainedTokenizerFast``.

    Special tokens: ``<pad>`` (0), ``<s>`` (1), ``</s>`` (2), plus the template's own markers, which
    stay single tokens. The template's Jinja form is stored as ``tokenizer.chat_template``. Long documents
    are cut and sampled by :func:`training_pieces` (see the module doc); ``progress`` (default: stderr is a
    terminal) shows the trainer's progress bar.
    """
    texts = list(texts)
    tally: dict[str, int] = {}
    pieces = list(training_pieces(texts, tally=tally))
    note = f", {tally['split']} longer than {PIECE_CHARS:,} characters cut into pieces" if tally["split"] else ""
    if tally["sampled"]:
        note += f" ({tally['sampled']} longer than {DOC_CHARS:,} sampled)"
    print(
        f"[tokenizer] training byte-level BPE (vocab {vocab_size:,}) on {tally['docs']:,} documents, "
        f"{tally['chars']:,} characters{note}",
        file=sys.stderr,
        flush=True,
    )
    tmpl = get_template(template)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=sys.stderr.isatty() if progress is None else progress,
        special_tokens=list(SPECIAL_TOKENS) + list(tmpl.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(pieces, trainer, length=len(pieces))
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
    fp = texts_fingerprint(
        texts, vocab_size=vocab_size, template=template, kind="bytebpe-v2", pieces=[PIECE_CHARS, DOC_CHARS]
    )
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


def tokenizer_identity(tokenizer: Any) -> str:
    """sha256 (16 hex digits) of what decides a tokenizer's ids: its model (the fast backend's JSON without the
    padding and truncation state, or a sentencepiece model, or the vocabulary) and its special-token ids. The
    same tokenizer saved in different folders (a base model, every stage's export) has the same identity."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("padding", None)
        spec.pop("truncation", None)
        h.update(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    elif getattr(tokenizer, "sp_model", None) is not None:
        h.update(tokenizer.sp_model.serialized_model_proto())
    else:
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id]
    added = sorted(tokenizer.get_added_vocab().items()) if hasattr(tokenizer, "get_added_vocab") else []
    h.update(json.dumps([specials, added], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()[:16]
