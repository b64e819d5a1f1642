"""The tiny checkpoint writer produces the official download layouts: Baichuan2 .bin shards + sentencepiece model
+ official configs; Qwen2.5 safetensors shards + byte-level BPE, loadable by the transformers Auto classes."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pedgpt.models.tiny_checkpoints import write_tiny


@pytest.mark.parametrize("family", ["baichuan2_7b", "baichuan2_13b"])
def test_baichuan2_layout(family, official_dir):
    spm = pytest.importorskip("sentencepiece")
    d = official_dir(family)
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert (cfg["model_type"], cfg["architectures"], cfg["tokenizer_class"]) == (
        "baichuan",
        ["BaichuanForCausalLM"],
        "BaichuanTokenizer",
    )
    assert ("max_position_embeddings" in cfg) == (family == "baichuan2_7b")
    if family == "baichuan2_13b":
        heads = cfg["num_attention_heads"]
        assert heads & (heads - 1) != 0  # not a power of two, like the real 40
    index = json.load(open(os.path.join(d, "pytorch_model.bin.index.json")))
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and all(s.startswith("pytorch_model-") and s.endswith(".bin") for s in shards)
    tensors = {}
    for s in shards:
        tensors.update(torch.load(os.path.join(d, s), map_location="cpu", weights_only=True))
    assert sorted(tensors) == sorted(index["weight_map"])
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in tensors.values())
    assert all(t.dtype == torch.bfloat16 for t in tensors.values())
    h = cfg["hidden_size"]
    assert tensors["model.layers.0.self_attn.W_pack.weight"].shape == (3 * h, h)
    assert tensors["lm_head.weight"].shape == (cfg["vocab_size"], h)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    assert sp.get_piece_size() == cfg["vocab_size"]
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert (sp.piece_to_id("<reserved_106>"), sp.piece_to_id("<reserved_107>")) == (195, 196)
    assert sp.pad_id() == -1
    gen = json.load(open(os.path.join(d, "generation_config.json")))
    assert (gen["user_token_id"], gen["assistant_token_id"]) == (195, 196)
    tok_cfg = json.load(open(os.path.join(d, "tokenizer_config.json")))
    assert (tok_cfg["add_bos_token"], tok_cfg["add_eos_token"]) == (False, False)
    assert not any(n.endswith(".py") or n.endswith(".safetensors") for n in os.listdir(d))


def test_qwen2_5_tiny_loads_with_the_auto_classes(tmp_path):
    d = write_tiny("qwen2_5", str(tmp_path / "qwen"), seed=3)
    names = os.listdir(d)
    assert "model.safetensors.index.json" in names and sum(n.endswith(".safetensors") for n in names) == 2
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    cfg = model.config
    assert cfg.model_type == "qwen2" and cfg.vocab_size > len(tok)
    assert cfg.num_key_value_heads < cfg.num_attention_heads
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    assert tok.bos_token is None and tok.eos_token == "<|endoftext|>"
    text = tok.apply_chat_template(
        [{"role": "user", "content": "孩子发烧怎么办？"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert tok.convert_tokens_to_ids("<|im_start|>") in ids[0].tolist()
    assert tok.decode(tok("宝宝 2 岁, fever 38.5℃")["input_ids"]) == "宝宝 2 岁, fever 38.5℃"
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], cfg.vocab_size) and torch.isfinite(logits).all()
    raw = json.load(open(os.path.join(d, "config.json")))
    assert raw["rope_theta"] == 1e6 and raw["torch_dtype"] == "bfloat16"


def test_writer_refuses_unknown_families_and_non_empty_dirs(tmp_path):
    with pytest.raises(ValueError, match="unknown family"):
        write_tiny("llama", str(tmp_path / "x"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        write_tiny("qwen2_5", str(tmp_path / "full"))


def test_same_seed_same_weights(tmp_path):
    a = write_tiny("qwen2_5", str(tmp_path / "a"), seed=5)
    b = write_tiny("qwen2_5", str(tmp_path / "b"), seed=5)
    c = write_tiny("qwen2_5", str(tmp_path / "c"), seed=6)
    shard = "model-00001-of-00002.safetensors"
    read = lambda d: open(os.path.join(d, shard), "rb").read()  # noqa: E731
    assert read(a) == read(b) != read(c)
