"""Training-side behaviour of the native Baichuan2: meta-device build, non-reentrant gradient checkpointing, the
labels loss, NormHead semantics and the accessors FSDP/PEFT code relies on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pedgpt.models.baichuan2 import Baichuan2Config, Baichuan2ForCausalLM, NormHead

FAMILY_KW = {"rope": dict(num_attention_heads=4), "alibi": dict(num_attention_heads=5)}


def tiny_config(position: str) -> Baichuan2Config:
    return Baichuan2Config(
        vocab_size=211,
        hidden_size=80 if position == "alibi" else 64,
        intermediate_size=96,
        num_hidden_layers=2,
        position_embedding=position,
        **FAMILY_KW[position],
    )


def make_model(position: str, seed: int = 0) -> Baichuan2ForCausalLM:
    torch.manual_seed(seed)
    model = Baichuan2ForCausalLM(tiny_config(position))
    with torch.no_grad():  # non-trivial norms so every parameter matters
        for m in model.modules():
            if isinstance(m, nn.Module) and type(m).__name__ == "Baichuan2RMSNorm":
                m.weight.uniform_(0.5, 1.5)
    return model


def batch(vocab: int):
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(3, vocab, (2, 11), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    return ids, labels


@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_meta_device_build_then_materialise(position):
    cfg = tiny_config(position)
    with torch.device("meta"):
        model = Baichuan2ForCausalLM(cfg)
    assert all(p.is_meta for p in model.parameters())
    model.to_empty(device="cpu")
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    reference = Baichuan2ForCausalLM(cfg)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(model.model.norm.weight, torch.ones(cfg.hidden_size))
    assert model.lm_head.weight.std() > 0
    ids, labels = batch(cfg.vocab_size)
    assert torch.isfinite(model(input_ids=ids, labels=labels).loss)


def test_meta_build_with_accelerate_and_init_weights():
    from accelerate import init_empty_weights

    cfg = tiny_config("alibi")
    with init_empty_weights():
        model = Baichuan2ForCausalLM(cfg)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    model.apply(model._init_weights)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(model.model.layers[0].input_layernorm.weight, torch.ones(cfg.hidden_size))
    assert model.model.embed_tokens.weight[cfg.pad_token_id].abs().sum() == 0


@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_gradient_checkpointing_gives_the_same_loss_and_grads(position):
    ids, labels = batch(211)
    results = []
    for checkpointing in (False, True):
        model = make_model(position).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert all(layer.gradient_checkpointing for layer in model.model.layers)
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss0, grads0), (loss1, grads1) = results
    assert torch.allclose(loss0, loss1, atol=1e-6, rtol=0)
    assert grads0.keys() == grads1.keys()
    for name in grads0:
        assert torch.allclose(grads0[name], grads1[name], atol=1e-6, rtol=1e-5), name
    assert grads0["model.layers.0.self_attn.W_pack.weight"].abs().sum() > 0


def test_checkpointing_actually_recomputes():
    calls = []
    model = make_model("rope").train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mlp = model.model.layers[0].mlp
    plain_forward = mlp.forward

    def counting_forward(x):  # a forward hook would not do: torch suppresses module hooks while recomputing
        calls.append(1)
        return plain_forward(x)

    mlp.forward = counting_forward
    ids, labels = batch(211)
    model(input_ids=ids, labels=labels).loss.backward()
    assert len(calls) == 2  # forward + recomputation during backward


@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_labels_loss_is_shifted_cross_entropy(position):
    model = make_model(position).eval()
    ids, labels = batch(211)
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    logits = out.logits.double()
    total, count = 0.0, 0
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1] - 1):
            if labels[b, t + 1] != -100:
                total += -torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]].item()
                count += 1
    assert out.loss.item() == pytest.approx(total / count, rel=1e-5)


def test_norm_head_normalises_in_fp32_and_never_in_place():
    head = NormHead(16, 10)
    with torch.no_grad():
        head.weight.mul_(torch.linspace(0.1, 5.0, 10)[:, None])
    head = head.to(torch.bfloat16)
    stored = head.weight.detach().clone()
    h = torch.randn(3, 16, dtype=torch.bfloat16)
    out = head(h)
    expected_w = head.weight.float() / head.weight.float().norm(dim=1, keepdim=True)
    assert torch.equal(head.normalized_weight(torch.float32), expected_w.float()) or torch.allclose(
        head.normalized_weight(torch.float32), expected_w, atol=1e-7, rtol=0
    )
    assert torch.equal(out, F.linear(h, expected_w.to(torch.bfloat16)))
    assert torch.equal(head.weight, stored) and head.weight.dtype == torch.bfloat16
    head.float()(torch.randn(2, 16)).sum().backward()
    assert head.weight.grad is not None and torch.equal(head.weight.detach().to(torch.bfloat16), stored)


def test_accessors_used_by_fsdp_and_peft():
    model = make_model("alibi").eval()
    assert isinstance(model.model.layers, nn.ModuleList)
    assert model.get_decoder() is model.model and model.base_model_prefix == "model"
    assert model.get_input_embeddings() is model.model.embed_tokens
    head = model.get_output_embeddings()
    assert isinstance(head, NormHead) and head is model.lm_head
    assert set(model._no_split_modules) == {"Baichuan2DecoderLayer"} and model.supports_gradient_checkpointing
    ids, _ = batch(211)
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1])[None].expand_as(ids)
    with torch.no_grad():
        out = model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        logits = model(input_ids=ids).logits
    assert torch.allclose(head(out.last_hidden_state), logits, atol=1e-6)
    names = {n for n, _ in model.named_modules()}
    assert "model.layers.0.self_attn.W_pack" in names and "model.layers.1.mlp.down_proj" in names


def test_lora_on_w_pack_trains(tmp_path):
    peft = pytest.importorskip("peft")
    model = make_model("rope").train()
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["W_pack", "o_proj"], lora_dropout=0.0))
    ids, labels = batch(211)
    lora(input_ids=ids, labels=labels).loss.backward()
    grads = [p.grad for n, p in lora.named_parameters() if "lora_B" in n]
    assert len(grads) == 4 and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_invalid_position_embedding_is_rejected():
    with pytest.raises(ValueError, match="position_embedding"):
        Baichuan2Config(position_embedding="learned")
