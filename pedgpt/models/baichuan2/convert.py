"""Conversion between the official Baichuan2 download layout and pedgpt's native ``baichuan2`` layout.

* official (``model_type: "baichuan"``, remote code, ``pytorch_model*.bin``, sentencepiece ``tokenizer.model``)
  → native (:class:`Baichuan2Config` ``config.json``, ``model*.safetensors`` with the same tensor names, dtypes and
  bytes, a fast ``tokenizer.json`` converted from ``tokenizer.model``, ``tokenizer.model`` itself,
  ``generation_config.json``): :func:`official_to_native`, or :func:`ensure_native` which converts once into a
  content-addressed cache.
* native → official: :func:`native_to_official` (``.bin`` shards + index, the official config keys restored from
  ``official_config``, the official tokenizer files, any ``*.py`` remote code present in the source).

Whether a checkpoint is the RoPE model (7B) or the ALiBi model (13B) is read from its config: only the RoPE
model's official ``config.json`` has ``max_position_embeddings``. Every directory is written under a temporary
name and renamed into place, so a reader never sees a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from pedgpt.models.baichuan2.configuration import Baichuan2Config
from pedgpt.models.baichuan2.modeling import Baichuan2ForCausalLM
from pedgpt.models.bin_weights import DEFAULT_SHARD_BYTES, bin_files, load_bin_file, save_bin_shards
from pedgpt.models.safetensors_weights import SafetensorsCheckpoint, save_safetensors_shards
from pedgpt.models.sp_tokenizer import read_sp_model, save_fast_tokenizer

OFFICIAL_MODEL_TYPE = "baichuan"
NATIVE_MODEL_TYPE = Baichuan2Config.model_type
SP_MODEL = "tokenizer.model"
CONVERSION_VERSION = 1  # part of the ensure_native cache key: bump when the native layout changes
DERIVED_TENSORS = ("rotary_emb.inv_freq",)  # buffers some official checkpoints carry; recomputed, passed through
USER_TOKEN_ID, ASSISTANT_TOKEN_ID = 195, 196
OFFICIAL_GENERATION_CONFIG = {  # generation_config.json of the Baichuan2 downloads
    "assistant_token_id": ASSISTANT_TOKEN_ID,
    "bos_token_id": 1,
    "do_sample": True,
    "eos_token_id": 2,
    "max_new_tokens": 2048,
    "pad_token_id": 0,
    "repetition_penalty": 1.05,
    "temperature": 0.3,
    "top_k": 5,
    "top_p": 0.85,
    "user_token_id": USER_TOKEN_ID,
}


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message is one line naming the file or directory."""


# ---------------------------------------------------------------------------------------------- small helpers
def read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ConversionError(f"{path}: malformed JSON ({err})") from None


def write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def model_type_of(model_dir: str) -> str | None:
    path = os.path.join(model_dir, "config.json")
    return read_json(path).get("model_type") if os.path.isfile(path) else None


def is_official_baichuan2(model_dir: str) -> bool:
    """True for a directory in the official download layout (``config.json`` with ``model_type: "baichuan"``)."""
    return model_type_of(model_dir) == OFFICIAL_MODEL_TYPE


def is_native_baichuan2(model_dir: str) -> bool:
    return model_type_of(model_dir) == NATIVE_MODEL_TYPE


def official_position_embedding(official: Mapping[str, Any]) -> str:
    """``"rope"`` (Baichuan2-7B) if the official config has ``max_position_embeddings``, else ``"alibi"`` (13B)."""
    return "rope" if "max_position_embeddings" in official else "alibi"


@contextmanager
def atomic_directory(out: str) -> Iterator[str]:
    """Yield a fresh temporary sibling of ``out``; on success it is renamed to ``out`` (which must not exist or be
    empty), on failure removed."""
    out = os.path.abspath(out)
    if os.path.isdir(out) and os.listdir(out):
        raise ConversionError(f"{out}: output directory exists and is not empty")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def expected_shapes(config: Baichuan2Config) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of a model for ``config`` (built on the meta device, no memory)."""
    with torch.device("meta"):
        model = Baichuan2ForCausalLM(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_tensors(where: str, shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]) -> None:
    """Raise a one-line :class:`ConversionError` unless ``shapes`` has exactly the expected names and shapes
    (derived rotary buffers allowed)."""
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(k for k in set(shapes) - set(expected) if not k.endswith(DERIVED_TENSORS))
    wrong = sorted(k for k in set(shapes) & set(expected) if tuple(shapes[k]) != tuple(expected[k]))
    problems = []
    if missing:
        problems.append(f"missing tensors {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
    if extra:
        problems.append(f"unexpected tensors {', '.join(extra[:4])}{' …' if len(extra) > 4 else ''}")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} tensors with the wrong shape (e.g. {k}: {tuple(shapes[k])}, expected {tuple(expected[k])})"
        )
    if problems:
        raise ConversionError(f"{where}: not a Baichuan2 checkpoint matching its config: {'; '.join(problems)}")


def copy_tokenizer_extras(src_dir: str, dst_dir: str) -> list[str]:
    """Copy ``tokenizer.model`` (if ``src_dir`` has one) into ``dst_dir``; returns the names copied.

    Exports call this so that every native export can be converted back to the official layout.
    """
    copied = []
    src = os.path.join(src_dir, SP_MODEL)
    if os.path.isfile(src):
        os.makedirs(dst_dir, exist_ok=True)
        shutil.copyfile(src, os.path.join(dst_dir, SP_MODEL))
        copied.append(SP_MODEL)
    return copied


# ---------------------------------------------------------------------------------------------- configs
def native_config_from_official(official: Mapping[str, Any]) -> Baichuan2Config:
    """The native config for an official ``config.json`` (kept whole in ``official_config``)."""
    heads = official["num_attention_heads"]
    if official.get("num_key_value_heads", heads) != heads:
        raise ConversionError(
            f"Baichuan2 uses full multi-head attention; num_key_value_heads="
            f"{official['num_key_value_heads']} != num_attention_heads={heads}"
        )
    position = official_position_embedding(official)
    max_pos = official.get("max_position_embeddings") or official.get("model_max_length") or 4096
    return Baichuan2Config(
        vocab_size=official["vocab_size"],
        hidden_size=official["hidden_size"],
        intermediate_size=official["intermediate_size"],
        num_hidden_layers=official["num_hidden_layers"],
        num_attention_heads=heads,
        hidden_act=official.get("hidden_act", "silu"),
        rms_norm_eps=official.get("rms_norm_eps", 1e-6),
        position_embedding=position,
        rope_theta=official.get("rope_theta", 10000.0),
        max_position_embeddings=max_pos,
        initializer_range=official.get("initializer_range", 0.02),
        use_cache=official.get("use_cache", True),
        pad_token_id=official.get("pad_token_id", 0),
        bos_token_id=official.get("bos_token_id", 1),
        eos_token_id=official.get("eos_token_id", 2),
        tie_word_embeddings=False,
        official_config=dict(official),
        architectures=["Baichuan2ForCausalLM"],
        dtype=official.get("torch_dtype", "bfloat16"),
    )


def default_official_config(position_embedding: str) -> dict[str, Any]:
    """Official keys for a native model that was never converted from an official download."""
    return {
        "architectures": ["BaichuanForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_baichuan.BaichuanConfig",
            "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM",
        },
        "model_type": OFFICIAL_MODEL_TYPE,
        "tokenizer_class": "BaichuanTokenizer",
        "initializer_range": 0.02,
        "use_cache": True,
        **({} if position_embedding == "rope" else {"gradient_checkpointing": False}),
    }


def official_config_from_native(native: Mapping[str, Any], weight_dtype: str) -> dict[str, Any]:
    """The official ``config.json`` for a native config dict: ``official_config`` with the shape keys updated."""
    position = native.get("position_embedding", "rope")
    if position == "rope" and float(native.get("rope_theta", 10000.0)) != 10000.0:
        raise ConversionError(
            f"the official Baichuan2 code fixes RoPE θ = 10000; this model has rope_theta={native['rope_theta']}"
        )
    official = dict(native.get("official_config") or default_official_config(position))
    for key in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "rms_norm_eps",
        "hidden_act",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
    ):
        if key in native:
            official[key] = native[key]
    official["model_type"] = OFFICIAL_MODEL_TYPE
    official["tie_word_embeddings"] = False
    official["torch_dtype"] = weight_dtype
    max_pos = native.get("max_position_embeddings", 4096)
    if position == "rope":
        official["max_position_embeddings"] = max_pos
    else:
        official.pop("max_position_embeddings", None)  # the ALiBi (13B) config has none: that is the marker
    official.setdefault("model_max_length", max_pos)
    return dict(sorted(official.items()))


# ---------------------------------------------------------------------------------------------- tokenizer files
def chat_template(user_piece: str, assistant_piece: str, eos_piece: str) -> str:
    """Baichuan2's chat layout: the system text unmarked, then ``<user>`` + question and ``<assistant>`` + answer +
    ``</s>`` per turn, and the assistant marker to generate after."""
    return (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
        f"{{% elif m['role'] == 'user' %}}{user_piece}{{{{ m['content'] }}}}"
        f"{{% else %}}{assistant_piece}{{{{ m['content'] }}}}{eos_piece}{{% endif %}}{{% endfor %}}"
        f"{{% if add_generation_prompt %}}{assistant_piece}{{% endif %}}"
    )


def write_official_tokenizer_files(
    out: str, model_max_length: int = 4096, generation_config: Mapping[str, Any] | None = None
) -> None:
    """``tokenizer_config.json`` (BaichuanTokenizer, no BOS/EOS added, pad = unk), ``special_tokens_map.json`` and
    ``generation_config.json`` (``generation_config`` if given, else the released defaults) as in the download."""

    def token(s: str) -> dict[str, Any]:
        return {"content": s, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}

    def added(s: str) -> dict[str, Any]:
        return {"__type": "AddedToken", **token(s), "single_word": True}

    write_json(
        os.path.join(out, "tokenizer_config.json"),
        {
            "add_bos_token": False,
            "add_eos_token": False,
            "auto_map": {"AutoTokenizer": ["tokenization_baichuan.BaichuanTokenizer", None]},
            "bos_token": added("<s>"),
            "clean_up_tokenization_spaces": False,
            "eos_token": added("</s>"),
            "model_max_length": model_max_length,
            "pad_token": added("<unk>"),
            "sp_model_kwargs": {},
            "tokenizer_class": "BaichuanTokenizer",
            "unk_token": added("<unk>"),
            "use_fast": False,
        },
    )
    specials = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>"}
    write_json(os.path.join(out, "special_tokens_map.json"), {k: token(v) for k, v in specials.items()})
    gen = dict(generation_config) if generation_config else dict(OFFICIAL_GENERATION_CONFIG)
    write_json(os.path.join(out, "generation_config.json"), gen)


def _write_native_tokenizer(src: str, out: str, model_max_length: int) -> None:
    sp_path = os.path.join(src, SP_MODEL)
    if not os.path.isfile(sp_path):
        raise ConversionError(
            f"{sp_path}: missing; the official Baichuan2 layout ships its sentencepiece tokenizer there"
        )
    gen_path = os.path.join(src, "generation_config.json")
    gen = read_json(gen_path) if os.path.isfile(gen_path) else {}
    sp = read_sp_model(sp_path)
    user = sp.piece(gen.get("user_token_id", USER_TOKEN_ID))
    assistant = sp.piece(gen.get("assistant_token_id", ASSISTANT_TOKEN_ID))
    eos = sp.piece(gen.get("eos_token_id", sp.eos_id))
    template = chat_template(user, assistant, eos) if user and assistant and eos else None
    save_fast_tokenizer(sp_path, out, model_max_length=model_max_length, chat_template=template)
    copy_tokenizer_extras(src, out)


# ---------------------------------------------------------------------------------------------- official -> native
def _write_native(src: str, out: str) -> None:
    """Convert the official checkpoint ``src`` into the existing empty directory ``out``."""
    official = read_json(os.path.join(src, "config.json"))
    if official.get("model_type") != OFFICIAL_MODEL_TYPE:
        raise ConversionError(
            f"{src}: not an official Baichuan2 checkpoint (model_type "
            f"{official.get('model_type')!r}, expected {OFFICIAL_MODEL_TYPE!r})"
        )
    config = native_config_from_official(official)
    expected = expected_shapes(config)
    files = bin_files(src)
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:  # validate names and shapes before writing anything large
        shapes.update({k: tuple(v.shape) for k, v in load_bin_file(path).items()})
    check_tensors(src, shapes, expected)
    save_safetensors_shards((load_bin_file(path) for path in files), out, n_groups=len(files))
    config.save_pretrained(out)
    tok_cfg_path = os.path.join(src, "tokenizer_config.json")
    tok_cfg = read_json(tok_cfg_path) if os.path.isfile(tok_cfg_path) else {}
    max_len = tok_cfg.get("model_max_length") or official.get("model_max_length") or config.max_position_embeddings
    _write_native_tokenizer(src, out, int(min(max_len, 10**9)))
    if os.path.isfile(os.path.join(src, "generation_config.json")):
        shutil.copyfile(os.path.join(src, "generation_config.json"), os.path.join(out, "generation_config.json"))


def official_to_native(src: str, out: str) -> str:
    """Convert an official Baichuan2 directory ``src`` into a new native directory ``out`` (atomically)."""
    with atomic_directory(out) as tmp:
        _write_native(src, tmp)
    return out


# ---------------------------------------------------------------------------------------------- native -> official
def native_to_official(src: str, out: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> str:
    """Convert a native ``baichuan2`` directory (a conversion or a pedgpt export) into the official layout."""
    native = read_json(os.path.join(src, "config.json"))
    if native.get("model_type") != NATIVE_MODEL_TYPE:
        raise ConversionError(
            f"{src}: not a native Baichuan2 checkpoint (model_type {native.get('model_type')!r}, "
            f"expected {NATIVE_MODEL_TYPE!r})"
        )
    sp_path = os.path.join(src, SP_MODEL)
    if not os.path.isfile(sp_path):
        raise ConversionError(
            f"{sp_path}: missing; the official layout needs the sentencepiece tokenizer (copy it "
            "from the base model, e.g. with copy_tokenizer_extras)"
        )
    weights = SafetensorsCheckpoint(src)
    config = Baichuan2Config.from_dict({k: v for k, v in native.items() if k != "model_type"})
    check_tensors(src, {k: weights.shape(k) for k in weights}, expected_shapes(config))
    weight_dtype = weights.dtype_name("model.embed_tokens.weight")
    with atomic_directory(out) as tmp:
        save_bin_shards(weights, tmp, max_shard_bytes=max_shard_bytes)
        official = official_config_from_native(native, weight_dtype)
        write_json(os.path.join(tmp, "config.json"), official)
        shutil.copyfile(sp_path, os.path.join(tmp, SP_MODEL))
        gen_path = os.path.join(src, "generation_config.json")
        gen = read_json(gen_path) if os.path.isfile(gen_path) else None
        write_official_tokenizer_files(tmp, int(official.get("model_max_length", 4096)), gen)
        for name in sorted(os.listdir(src)):
            if name.endswith(".py") and os.path.isfile(os.path.join(src, name)):
                shutil.copyfile(os.path.join(src, name), os.path.join(tmp, name))
    return out


# ---------------------------------------------------------------------------------------------- cached conversion
def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def source_key(model_dir: str, memo_path: str | None = None) -> str:
    """A hash of every file under ``model_dir`` (relative name, size, sha256 of the content) and the conversion
    version. File hashes are memoised in ``memo_path`` by (real path, size, mtime), so a download is read once."""
    memo: dict[str, str] = {}
    if memo_path and os.path.isfile(memo_path):
        try:
            memo = read_json(memo_path)
        except (ConversionError, OSError):
            memo = {}
    changed, lines = False, [f"pedgpt-baichuan2-conversion-v{CONVERSION_VERSION}"]
    for root, dirs, files in os.walk(model_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            st = os.stat(path)
            memo_key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
            digest = memo.get(memo_key)
            if digest is None:
                digest = memo[memo_key] = _sha256_file(path)
                changed = True
            lines.append(f"{os.path.relpath(path, model_dir)}\0{st.st_size}\0{digest}")
    if memo_path and changed:
        os.makedirs(os.path.dirname(memo_path), exist_ok=True)
        tmp = f"{memo_path}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        write_json(tmp, memo)
        os.replace(tmp, memo_path)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def ensure_native(model_dir: str, cache_dir: str, log: Callable[[str], Any] = print) -> str:
    """``model_dir`` itself unless it is an official Baichuan2 download; then its native conversion, made once
    under ``cache_dir/converted/<key>/`` (key: :func:`source_key`) and reused while the source is unchanged.

    Logs one line per call: ``converted Baichuan2 SRC -> DST`` when it converts, ``using converted Baichuan2 SRC ->
    DST`` when the cached copy is reused. Safe when several processes race: each converts into its own temporary
    directory, the first rename wins, and the others use the winner's copy.
    """
    if not is_official_baichuan2(model_dir):
        return model_dir
    root = os.path.join(os.path.abspath(cache_dir), "converted")
    key = source_key(model_dir, os.path.join(root, "file_hashes.json"))[:24]
    dst = os.path.join(root, key)
    if os.path.isfile(os.path.join(dst, "config.json")):
        log(f"using converted Baichuan2 {model_dir} -> {dst}")
        return dst
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root)
    try:
        _write_native(model_dir, tmp)
        try:
            os.replace(tmp, dst)
        except OSError:
            if not os.path.isfile(os.path.join(dst, "config.json")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first; its copy is identical
            log(f"using converted Baichuan2 {model_dir} -> {dst}")
            return dst
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"converted Baichuan2 {model_dir} -> {dst}")
    return dst


# ---------------------------------------------------------------------------------------------- CLI dispatch
def convert_dir(src: str, out: str, to: str | None = None, log: Callable[[str], Any] = print) -> str:
    """What ``python -m pedgpt.models.convert`` does.

    ``to`` unset (or ``"native"``): an official Baichuan2 download becomes a native directory; any other model
    transformers loads without remote code is copied unchanged. ``to="baichuan2"``: a native Baichuan2 directory
    (a conversion or a pedgpt export) becomes the official layout.
    """
    if not os.path.isfile(os.path.join(src, "config.json")):
        raise ConversionError(f"{src}: no config.json (not a model directory)")
    if to in (None, "", "native"):
        if is_official_baichuan2(src):
            official_to_native(src, out)
            log(f"converted Baichuan2 {src} -> {out} (native baichuan2)")
        elif read_json(os.path.join(src, "config.json")).get("auto_map"):
            raise ConversionError(
                f"{src}: a remote-code model that pedgpt cannot convert (model_type {model_type_of(src)!r})"
            )
        else:
            with atomic_directory(out) as tmp:
                shutil.copytree(src, tmp, dirs_exist_ok=True)
            log(f"copied {src} -> {out} (model_type {model_type_of(src)!r} already loads natively)")
        return out
    if to == "baichuan2":
        native_to_official(src, out)
        log(f"converted native Baichuan2 {src} -> {out} (official layout)")
        return out
    raise ConversionError(f"unknown target to={to!r}; use to=baichuan2 (native -> official) or leave it unset")
