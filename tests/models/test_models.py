import os

import pytest
import torch
from omegaconf import OmegaConf

from pedgpt.common.errors import ModelPathError
from pedgpt.models.build import arch_config, build_from_config, count_parameters, load_pretrained, resolve_model_path
from pedgpt.models.logps import SequenceLogProbs
from pedgpt.models.tokenizer import cached_tokenizer, train_bpe_tokenizer

TEXTS = [
    "小儿急性喉炎常在夜间出现犬吠样咳嗽。",
    "孩子腹泻时要预防脱水，少量多次喂口服补液盐。",
    "Human: 你好\n\nAssistant: 您好",
] * 30


def test_tokenizer_round_trips_chinese_and_has_specials():
    tok = train_bpe_tokenizer(TEXTS, vocab_size=500)
    for t in ("宝宝今天体温38.5℃，精神还好", "手足口病", "Human: 问\n\nAssistant: 答"):
        assert tok.decode(tok(t, add_special_tokens=False)["input_ids"]) == t
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert len(tok) <= 500


def test_chatml_tokenizer_keeps_markers_whole():
    tok = train_bpe_tokenizer(TEXTS, vocab_size=500, template="chatml")
    ids = tok("<|im_start|>user\n你好<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<|im_start|>") == ids[0]
    assert tok.convert_tokens_to_ids("<|im_end|>") == ids[-1]


def test_cached_tokenizer_reuses_the_cache(tmp_path):
    a, fa = cached_tokenizer(TEXTS, str(tmp_path), 400, "human_assistant")
    b, fb = cached_tokenizer(TEXTS, str(tmp_path), 400, "human_assistant")
    _, fc = cached_tokenizer(TEXTS + ["新"], str(tmp_path), 400, "human_assistant")
    assert fa == fb != fc
    assert a.get_vocab() == b.get_vocab()
    assert len(os.listdir(tmp_path / "tokenizers")) == 2


def test_tiny_model_save_load_round_trip(tmp_path):
    tok = train_bpe_tokenizer(TEXTS, vocab_size=300)
    mcfg = OmegaConf.create(
        {
            "arch": {
                "model_type": "llama",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
            }
        }
    )
    model = build_from_config(arch_config(mcfg, len(tok), tok), seed=0).eval()
    model.save_pretrained(tmp_path)
    again = load_pretrained(str(tmp_path)).eval()
    ids = torch.randint(3, len(tok), (2, 10))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
    total, trainable = count_parameters(model)
    assert total == trainable == sum(p.numel() for p in model.parameters())


def test_sequence_logprobs_matches_model_logits(tiny_llama):
    model = tiny_llama(vocab=120)
    ids = torch.randint(0, 120, (2, 12))
    labels = ids.clone()
    labels[:, :5] = -100
    with torch.no_grad():
        s, n = SequenceLogProbs(model)(ids, labels)
        lp = torch.log_softmax(model(ids).logits.double(), -1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    assert torch.allclose(s.double(), lp[:, 4:].sum(-1), atol=1e-4)
    assert n.tolist() == [7, 7]


def test_missing_model_path_error_names_the_fix(monkeypatch):
    monkeypatch.delenv("PEDGPT_MODEL_DIR", raising=False)
    with pytest.raises(ModelPathError, match="model.path=.*PEDGPT_MODEL_DIR"):
        resolve_model_path(OmegaConf.create({"name": "baichuan2_13b", "path": None, "dir_name": "Baichuan2-13B-Base"}))
