"""Converting a sentencepiece BPE ``tokenizer.model`` (Baichuan2's) into a fast Hugging Face tokenizer.

The model file is parsed with protobuf from a schema declared here (the public field numbers of
``sentencepiece_model.proto``, only the fields used), so conversion needs neither the sentencepiece library nor
remote code. The fast tokenizer reproduces sentencepiece's BPE encoding:

* normaliser: the identity rule, spaces escaped to ``▁`` (plus a ``▁`` prefix only if ``add_dummy_prefix``);
* model: BPE over the whole normalised text with ``byte_fallback``; the merges are every split of a normal piece
  into two normal pieces, ranked by the piece's score (sentencepiece merges the highest-scoring candidate first);
* user-defined symbols (``\\n``, ``\\t``, ``<reserved_N>`` …) are added tokens matched before BPE, as sentencepiece
  matches them before merging; ``<unk>``/``<s>``/``</s>`` are special tokens (recognised in text, as the official
  slow tokenizer does); digits stay split because the vocabulary has no multi-digit piece;
* decoder: ``▁`` → space, byte pieces fused back into UTF-8.

Ids are the sentencepiece ids; ``len(tokenizer)`` is the piece count, which need not equal a model's vocab_size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
SPACE = "\u2581"  # ▁


@dataclass
class SentencePieceModel:
    """The parts of a sentencepiece ``ModelProto`` the conversion uses."""

    pieces: list[tuple[str, float, int]]  # (piece, score, type), index = id
    model_type: str
    byte_fallback: bool
    split_digits: bool
    treat_whitespace_as_suffix: bool
    normalizer_name: str
    precompiled_charsmap: bytes
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool
    unk_id: int
    bos_id: int
    eos_id: int
    pad_id: int

    def piece(self, i: int) -> str | None:
        return self.pieces[i][0] if 0 <= i < len(self.pieces) else None


def _field(
    msg: Any,
    name: str,
    number: int,
    ftype: int,
    default: str | None = None,
    repeated: bool = False,
    type_name: str | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype)
    f.label = f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL
    if default is not None:
        f.default_value = default
    if type_name:
        f.type_name = type_name


@lru_cache(maxsize=1)
def _model_proto_class() -> type:
    """A protobuf message class for the subset of sentencepiece's ``ModelProto`` read here (proto2 defaults)."""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="pedgpt_sentencepiece_subset.proto", package="pedgpt_sp", syntax="proto2"
    )
    model = fdp.message_type.add(name="ModelProto")
    piece = model.nested_type.add(name="SentencePiece")
    _field(piece, "piece", 1, F.TYPE_STRING)
    _field(piece, "score", 2, F.TYPE_FLOAT)
    _field(piece, "type", 3, F.TYPE_INT32, default=str(NORMAL))  # enum on the wire = varint
    _field(model, "pieces", 1, F.TYPE_MESSAGE, repeated=True, type_name=".pedgpt_sp.ModelProto.SentencePiece")
    _field(model, "trainer_spec", 2, F.TYPE_MESSAGE, type_name=".pedgpt_sp.TrainerSpec")
    _field(model, "normalizer_spec", 3, F.TYPE_MESSAGE, type_name=".pedgpt_sp.NormalizerSpec")
    trainer = fdp.message_type.add(name="TrainerSpec")
    for name, number, ftype, default in (
        ("model_type", 3, F.TYPE_INT32, "1"),
        ("vocab_size", 4, F.TYPE_INT32, "8000"),
        ("treat_whitespace_as_suffix", 24, F.TYPE_BOOL, "false"),
        ("split_digits", 25, F.TYPE_BOOL, "false"),
        ("byte_fallback", 35, F.TYPE_BOOL, "false"),
        ("unk_id", 40, F.TYPE_INT32, "0"),
        ("bos_id", 41, F.TYPE_INT32, "1"),
        ("eos_id", 42, F.TYPE_INT32, "2"),
        ("pad_id", 43, F.TYPE_INT32, "-1"),
    ):
        _field(trainer, name, number, ftype, default)
    norm = fdp.message_type.add(name="NormalizerSpec")
    norm_fields: tuple[tuple[str, int, int, str | None], ...] = (
        ("name", 1, F.TYPE_STRING, None),
        ("precompiled_charsmap", 2, F.TYPE_BYTES, None),
        ("add_dummy_prefix", 3, F.TYPE_BOOL, "true"),
        ("remove_extra_whitespaces", 4, F.TYPE_BOOL, "true"),
        ("escape_whitespaces", 5, F.TYPE_BOOL, "true"),
    )
    for name, number, ftype, maybe in norm_fields:
        _field(norm, name, number, ftype, maybe)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("pedgpt_sp.ModelProto")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)  # protobuf < 4.21


def read_sp_model(source: str | bytes) -> SentencePieceModel:
    """Parse a sentencepiece ``tokenizer.model`` (a path or its bytes)."""
    data = source if isinstance(source, bytes) else open(source, "rb").read()
    proto = _model_proto_class()()
    try:
        proto.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError differs between implementations
        where = source if isinstance(source, str) else "<bytes>"
        raise ValueError(f"{where}: not a sentencepiece model ({err})") from None
    if not proto.pieces:
        raise ValueError(f"{source if isinstance(source, str) else '<bytes>'}: sentencepiece model has no pieces")
    t, n = proto.trainer_spec, proto.normalizer_spec
    return SentencePieceModel(
        pieces=[(p.piece, p.score, p.type) for p in proto.pieces],
        model_type=MODEL_TYPES.get(t.model_type, "?"),
        byte_fallback=t.byte_fallback,
        split_digits=t.split_digits,
        treat_whitespace_as_suffix=t.treat_whitespace_as_suffix,
        normalizer_name=n.name,
        precompiled_charsmap=n.precompiled_charsmap,
        add_dummy_prefix=n.add_dummy_prefix,
        remove_extra_whitespaces=n.remove_extra_whitespaces,
        escape_whitespaces=n.escape_whitespaces,
        unk_id=t.unk_id,
        bos_id=t.bos_id,
        eos_id=t.eos_id,
        pad_id=t.pad_id,
    )


def bpe_merges(sp: SentencePieceModel) -> list[tuple[str, str]]:
    """Every ``(left, right)`` split of a normal piece into two normal pieces, best (highest score) piece first."""
    normal = {p: i for i, (p, _, t) in enumerate(sp.pieces) if t == NORMAL}
    ranked = []
    for piece, pid in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-sp.pieces[pid][1], pid, normal[left], normal[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_tokenizer(sp: SentencePieceModel) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` that encodes like the sentencepiece BPE model ``sp``."""
    if sp.model_type != "bpe":
        raise ValueError(f"only sentencepiece BPE models are supported, this one is {sp.model_type}")
    if sp.remove_extra_whitespaces or sp.treat_whitespace_as_suffix:
        raise ValueError(
            "sentencepiece models with remove_extra_whitespaces or treat_whitespace_as_suffix are not supported"
        )
    unk = sp.piece(sp.unk_id)
    vocab: dict[str, int] = {}
    for i, (piece, _, _) in enumerate(sp.pieces):
        vocab.setdefault(piece, i)
    tk = Tokenizer(
        models.BPE(vocab=vocab, merges=bpe_merges(sp), unk_token=unk, fuse_unk=True, byte_fallback=sp.byte_fallback)
    )
    steps: list[Any] = []
    if sp.precompiled_charsmap:
        steps.append(normalizers.Precompiled(sp.precompiled_charsmap))
    if sp.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPACE))
    if sp.escape_whitespaces:
        steps.append(normalizers.Replace(Regex(" "), SPACE))
    if steps:
        tk.normalizer = normalizers.Sequence(steps)
    dec = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if sp.add_dummy_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tk.decoder = decoders.Sequence(dec)
    special = [AddedToken(p, special=True, normalized=False) for p, _, t in sp.pieces if t in (CONTROL, UNKNOWN)]
    tk.add_special_tokens(special)
    user = [AddedToken(p, special=False, normalized=SPACE in p) for p, _, t in sp.pieces if t == USER_DEFINED]
    tk.add_tokens(user)
    return tk


def _token_entry(content: str | None) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def save_fast_tokenizer(
    model_path: str, out_dir: str, model_max_length: int = 4096, chat_template: str | None = None
) -> SentencePieceModel:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` for ``model_path``.

    The config names the generic ``PreTrainedTokenizerFast`` (loadable by transformers 4.x and 5.x without remote
    code), adds no BOS/EOS, and uses ``<unk>`` as the pad token (sentencepiece has no pad piece here).
    """
    sp = read_sp_model(model_path)
    tk = build_tokenizer(sp)
    os.makedirs(out_dir, exist_ok=True)
    tk.save(os.path.join(out_dir, "tokenizer.json"))
    unk, bos, eos = sp.piece(sp.unk_id), sp.piece(sp.bos_id), sp.piece(sp.eos_id)
    pad = sp.piece(sp.pad_id) or unk
    specials = {"bos_token": bos, "eos_token": eos, "unk_token": unk, "pad_token": pad}
    specials = {k: v for k, v in specials.items() if v is not None}
    decoder = {}
    for i, (piece, _, t) in enumerate(sp.pieces):
        if t in (CONTROL, UNKNOWN, USER_DEFINED):
            decoder[str(i)] = dict(
                _token_entry(piece), normalized=t == USER_DEFINED and SPACE in piece, special=t != USER_DEFINED
            )
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "added_tokens_decoder": decoder,
        "legacy": False,
        **specials,
    }
    if chat_template:
        config["chat_template"] = chat_template
    _dump(os.path.join(out_dir, "tokenizer_config.json"), config)
    _dump(os.path.join(out_dir, "special_tokens_map.json"), {k: _token_entry(v) for k, v in specials.items()})
    return sp


def _dump(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
