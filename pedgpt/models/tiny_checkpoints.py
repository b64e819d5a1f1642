"""Tiny random checkpoints in the exact layouts of the official Hugging Face downloads, for tests and demos.

* ``baichuan2_7b``: RoPE model (config with ``max_position_embeddings``), 4 heads of 16.
* ``baichuan2_13b``: ALiBi model (config without ``max_position_embeddings``), 5 heads of 16 — a non-power-of-two
  head count like the real 40.
* ``qwen2_5``: native transformers ``qwen2`` (GQA, q/k/v biases, RoPE θ = 1e6, untied head, embedding rows beyond
  the tokenizer), safetensors shards + index, byte-level BPE ``tokenizer.json`` with ChatML specials.

Baichuan2 checkpoints are bf16 ``torch.save``'d ``.bin`` shards + ``pytorch_model.bin.index.json``, a sentencepiece
BPE ``tokenizer.model`` trained in-process with the official trainer settings, and the official
``config.json`` / ``tokenizer_config.json`` / ``special_tokens_map.json`` / ``generation_config.json``. No remote
code is written. Baichuan2 writing needs the ``sentencepiece`` library (the trainer).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from pedgpt.models.baichuan2.convert import (
    ASSISTANT_TOKEN_ID,
    OFFICIAL_GENERATION_CONFIG,
    USER_TOKEN_ID,
    write_official_tokenizer_files,
)
from pedgpt.models.bin_weights import save_bin_shards
from pedgpt.models.safetensors_weights import save_safetensors_shards

FAMILIES = ("baichuan2_7b", "baichuan2_13b", "qwen2_5")
SHAPES = {
    "baichuan2_7b": dict(hidden=64, heads=4, kv_heads=4, intermediate=172, layers=2),
    "baichuan2_13b": dict(hidden=80, heads=5, kv_heads=5, intermediate=216, layers=2),
    "qwen2_5": dict(hidden=64, heads=4, kv_heads=2, intermediate=176, layers=2),
}
# User-defined symbols from id 3: 86 markers, then <reserved_0..127>, so <reserved_106>/<reserved_107> = 195/196.
USER_SYMBOLS = (
    ["<SEP>", "<CLS>", "<MASK>", "\n", "\t"]
    + [f"<mark_{i}>" for i in range(81)]
    + [f"<reserved_{i}>" for i in range(128)]
)

_SENTENCES_ZH = [
    "孩子咳嗽已经三天了，晚上咳得比白天厉害，需要去医院看看吗？",
    "婴儿湿疹要注意保湿，洗澡水不要太热，衣物选择纯棉的。",
    "幼儿急疹常见于两岁以内的宝宝，高热三到五天后热退疹出。",
    "儿童缺铁性贫血可以多吃红肉和动物肝脏，必要时在医生指导下补铁。",
    "宝宝便秘时可以适当增加膳食纤维，并保证每天的饮水量。",
    "中耳炎的孩子可能会频繁抓耳朵、哭闹，夜间症状更明显。",
    "小孩误服药物后不要自行催吐，应立即带上药盒就医。",
    "秋季腹泻多由轮状病毒引起，重点是预防和纠正脱水。",
    "过敏性鼻炎的儿童早晨容易连续打喷嚏、流清水样鼻涕。",
    "请问六个月的宝宝可以开始添加哪些辅食？",
    "建议先从强化铁的米粉开始，每次只添加一种新食物，观察三天有无过敏。",
    "水痘具有传染性，患儿需要居家隔离直到全部疱疹结痂。",
    "发热本身是机体的防御反应，精神状态比体温数字更重要。",
    "如果出现抽搐、呼吸困难或者嘴唇发紫，请马上拨打急救电话。",
]
_SENTENCES_EN = [
    "My daughter has had a runny nose and a mild cough since Monday.",
    "Keep the child well hydrated and watch for signs of dehydration.",
    "Ibuprofen and paracetamol doses depend on the body weight of the child.",
    "The infant was born at 38 weeks and weighed 3.2 kg at birth.",
    "Hand washing is the simplest way to stop the spread of infections at school.",
    "Call a doctor if the fever lasts longer than three days.",
]
_CODE_LINES = [
    "def dose(weight_kg):\n    return 15 * weight_kg",
    "if temperature >= 38.5:\n\tprint('fever')",
    "    indented  text   with   several    spaces",
]


def corpus() -> list[str]:
    """Mixed Chinese / English / digit / whitespace training text (written for pedgpt)."""
    lines = list(_SENTENCES_ZH) + list(_SENTENCES_EN) + list(_CODE_LINES)
    for i in range(48):
        lines.append(
            f"患儿{i % 12 + 1}岁，体重{10 + i * 0.7:.1f}kg，体温{36.2 + (i % 9) * 0.4:.1f}℃，"
            f"心率{84 + 3 * i}次/分，血氧{94 + i % 6}%。"
        )
        lines.append(
            f"Visit {1000 + 37 * i}: temperature {37 + i % 4}.{i % 10} C, dose {2.5 * (i % 8 + 1):g} mL, "
            f"follow-up in {i % 5 + 2} days."
        )
    return lines


def _dump(out: str, name: str, obj: Any) -> None:
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def train_sentencepiece(out: str, vocab_size: int = 1100) -> int:
    """Train ``out/tokenizer.model`` with Baichuan2's trainer settings; returns the piece count."""
    import sentencepiece as spm  # optional heavy dependency: only the tiny-checkpoint writer trains

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=buf,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=0.9995,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        user_defined_symbols=USER_SYMBOLS,
        max_sentencepiece_length=16,
        num_threads=1,
        minloglevel=2,
    )
    with open(os.path.join(out, "tokenizer.model"), "wb") as f:
        f.write(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    got = (sp.piece_to_id("<reserved_106>"), sp.piece_to_id("<reserved_107>"))
    if got != (USER_TOKEN_ID, ASSISTANT_TOKEN_ID):
        raise RuntimeError(f"chat markers landed at ids {got}, expected (195, 196)")
    return sp.get_piece_size()


def _normal(g: torch.Generator, *shape: int, std: float) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * std


def _norm_weight(g: torch.Generator, n: int) -> torch.Tensor:
    return 1.0 + 0.2 * torch.randn(n, generator=g)  # not all ones, so a skipped norm shows in the logits


def baichuan2_weights(shape: dict[str, int], vocab: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Random bf16 tensors with the official Baichuan2 names and shapes; NormHead rows of very different norms."""
    h, inter = shape["hidden"], shape["intermediate"]
    sd = {"model.embed_tokens.weight": _normal(g, vocab, h, std=1.0)}
    for n in range(shape["layers"]):
        p = f"model.layers.{n}."
        sd[p + "self_attn.W_pack.weight"] = _normal(g, 3 * h, h, std=h**-0.5)
        sd[p + "self_attn.o_proj.weight"] = _normal(g, h, h, std=h**-0.5)
        sd[p + "mlp.gate_proj.weight"] = _normal(g, inter, h, std=h**-0.5)
        sd[p + "mlp.up_proj.weight"] = _normal(g, inter, h, std=h**-0.5)
        sd[p + "mlp.down_proj.weight"] = _normal(g, h, inter, std=inter**-0.5)
        sd[p + "input_layernorm.weight"] = _norm_weight(g, h)
        sd[p + "post_attention_layernorm.weight"] = _norm_weight(g, h)
    sd["model.norm.weight"] = _norm_weight(g, h)
    row_scale = 0.3 + 3.0 * torch.rand(vocab, 1, generator=g)
    sd["lm_head.weight"] = _normal(g, vocab, h, std=h**-0.5) * row_scale
    return {k: v.to(torch.bfloat16) for k, v in sd.items()}


def official_baichuan2_config(family: str, shape: dict[str, int], vocab: int) -> dict[str, Any]:
    """``config.json`` as the official download has it (13B: no ``max_position_embeddings``)."""
    cfg = {
        "architectures": ["BaichuanForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_baichuan.BaichuanConfig",
            "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM",
        },
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": shape["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": shape["intermediate"],
        "model_max_length": 4096,
        "model_type": "baichuan",
        "num_attention_heads": shape["heads"],
        "num_hidden_layers": shape["layers"],
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False,
        "tokenizer_class": "BaichuanTokenizer",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.29.2",
        "use_cache": True,
        "vocab_size": vocab,
    }
    if family == "baichuan2_7b":
        cfg["max_position_embeddings"] = 4096
    else:
        cfg["gradient_checkpointing"] = False
    return dict(sorted(cfg.items()))


def _write_baichuan2(family: str, out: str, g: torch.Generator) -> None:
    shape = SHAPES[family]
    vocab = train_sentencepiece(out)
    _dump(out, "config.json", official_baichuan2_config(family, shape, vocab))
    write_official_tokenizer_files(out, 4096, {**OFFICIAL_GENERATION_CONFIG, "transformers_version": "4.29.2"})
    weights = baichuan2_weights(shape, vocab, g)
    total = sum(t.numel() * t.element_size() for t in weights.values())
    save_bin_shards(weights, out, max_shard_bytes=total // 2 + 1 if family == "baichuan2_7b" else total // 3 + 1)


QWEN_PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _write_qwen_tokenizer(out: str) -> tuple[dict[str, int | None], int]:
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        corpus(),
        trainers.BpeTrainer(vocab_size=900, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in QWEN_SPECIALS])
    tk.save(os.path.join(out, "tokenizer.json"))
    ids = {s: tk.token_to_id(s) for s in QWEN_SPECIALS}
    decoder = {
        str(i): {
            "content": s,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for s, i in ids.items()
    }
    _dump(
        out,
        "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": decoder,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": None,
            "chat_template": CHATML_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": 131072,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    return ids, tk.get_vocab_size()


def _write_qwen(out: str, g: torch.Generator) -> None:
    shape = SHAPES["qwen2_5"]
    ids, n_tokens = _write_qwen_tokenizer(out)
    vocab = (n_tokens // 64 + 1) * 64  # strictly more rows than tokens, like 152064 > 151665
    h, nh, nkv, inter = shape["hidden"], shape["heads"], shape["kv_heads"], shape["intermediate"]
    hd, eot = h // nh, ids["<|endoftext|>"]
    _dump(
        out,
        "config.json",
        {
            "architectures": ["Qwen2ForCausalLM"],
            "attention_dropout": 0.0,
            "bos_token_id": eot,
            "eos_token_id": eot,
            "hidden_act": "silu",
            "hidden_size": h,
            "initializer_range": 0.02,
            "intermediate_size": inter,
            "max_position_embeddings": 32768,
            "max_window_layers": shape["layers"],
            "model_type": "qwen2",
            "num_attention_heads": nh,
            "num_hidden_layers": shape["layers"],
            "num_key_value_heads": nkv,
            "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.43.1",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": vocab,
        },
    )
    _dump(
        out,
        "generation_config.json",
        {
            "bos_token_id": eot,
            "do_sample": False,
            "eos_token_id": eot,
            "max_new_tokens": 2048,
            "transformers_version": "4.37.0",
        },
    )
    first = {"model.embed_tokens.weight": _normal(g, vocab, h, std=1.0)}
    layers = []
    for n in range(shape["layers"]):
        p, w = f"model.layers.{n}.", {}
        for proj, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
            w[p + f"self_attn.{proj}_proj.weight"] = _normal(g, rows, h, std=h**-0.5)
            w[p + f"self_attn.{proj}_proj.bias"] = _normal(g, rows, std=0.3)
        w[p + "self_attn.o_proj.weight"] = _normal(g, h, nh * hd, std=h**-0.5)
        w[p + "mlp.gate_proj.weight"] = _normal(g, inter, h, std=h**-0.5)
        w[p + "mlp.up_proj.weight"] = _normal(g, inter, h, std=h**-0.5)
        w[p + "mlp.down_proj.weight"] = _normal(g, h, inter, std=inter**-0.5)
        w[p + "input_layernorm.weight"] = _norm_weight(g, h)
        w[p + "post_attention_layernorm.weight"] = _norm_weight(g, h)
        layers.append(w)
    last = {"model.norm.weight": _norm_weight(g, h), "lm_head.weight": _normal(g, vocab, h, std=h**-0.5)}
    groups = [{**first, **layers[0]}, *layers[1:-1], {**layers[-1], **last}]  # needs >= 2 layers
    save_safetensors_shards([{k: v.to(torch.bfloat16) for k, v in grp.items()} for grp in groups], out)


def write_tiny(family: str, out: str, seed: int = 0) -> str:
    """Write a tiny random ``family`` checkpoint into ``out`` (created; must be empty or new); returns ``out``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if os.path.isdir(out) and os.listdir(out):
        raise FileExistsError(f"{out}: directory is not empty")
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    if family == "qwen2_5":
        _write_qwen(out, g)
    else:
        _write_baichuan2(family, out, g)
    return out
