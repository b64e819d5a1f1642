"""Routers see real tokens only and route in fp32: routing statistics and auxiliary losses are unchanged by extra
padding; a bf16 model's gates equal an fp32 oracle; adapters keep fp32 master weights (and fp32 optimizer state)
under a bf16 base."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.adapters import (
    adapter_modules,
    clear_task_ids,
    commit_router_stats,
    inject_moe_lora,
    router_aux_loss,
    router_stats,
    set_task_ids,
    set_token_mask,
)
from pedgpt.adapters.moe_lora import MoELoRALinear
from pedgpt.adapters.routers import get_router
from pedgpt.stages.mole import MoLEModule
from pedgpt.stages.sft import SFTModule

KW = dict(rank=4, alpha=8, num_universal=1, num_specific=3)


def tiny(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=120,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg).to(dtype)


def routed(pad_to):
    """Aux loss and committed statistics of one forward of two rows with 6 and 3 real tokens, right-padded."""
    torch.manual_seed(1)
    model = inject_moe_lora(tiny(), ["q_proj", "up_proj"], **KW, router="token_task_aux", top_k=2, aux_weight=0.5)
    for _, m in adapter_modules(model):
        torch.nn.init.normal_(m.moe_lora_B, std=0.1)
    g = torch.Generator().manual_seed(2)
    real = torch.randint(3, 120, (2, 6), generator=g)
    ids = torch.zeros(2, pad_to, dtype=torch.long)
    mask = torch.zeros(2, pad_to, dtype=torch.long)
    ids[0, :6], mask[0, :6] = real[0], 1
    ids[1, :3], mask[1, :3] = real[1, :3], 1
    model.train()
    set_task_ids(model, torch.tensor([0, 2]))
    set_token_mask(model, mask.bool())
    model(input_ids=ids, attention_mask=mask)
    aux = router_aux_loss(model)
    commit_router_stats(model)
    clear_task_ids(model)
    return aux, router_stats(model)


def test_statistics_and_aux_losses_are_unchanged_by_extra_padding():
    (aux_a, st_a), (aux_b, st_b) = routed(6), routed(26)  # 20 extra pad columns
    assert torch.equal(st_a["task_counts"], torch.tensor([6.0, 0, 3, 0, 0]))  # real tokens only
    assert torch.equal(st_a["task_counts"], st_b["task_counts"])
    assert torch.allclose(st_a["gate_mean"], st_b["gate_mean"], atol=1e-7, rtol=0)
    assert torch.allclose(st_a["entropy"], st_b["entropy"], atol=1e-7, rtol=0)
    assert torch.allclose(aux_a, aux_b, atol=1e-7, rtol=0)
    assert aux_a.abs() > 0


def test_without_a_mask_padding_would_count():
    """The control: without the token mask the pad columns enter the statistics (so the test above can fail)."""
    torch.manual_seed(1)
    model = inject_moe_lora(tiny(), ["q_proj"], **KW, router="token")
    set_task_ids(model, torch.tensor([0, 2]))
    with torch.no_grad():
        model(input_ids=torch.ones(2, 26, dtype=torch.long))
    commit_router_stats(model)
    assert router_stats(model)["task_counts"].sum() == 52


@pytest.mark.parametrize("router", ["token", "noisy_token"])
def test_bf16_gates_match_an_fp32_oracle(router):
    torch.manual_seed(3)
    base = torch.nn.Linear(256, 96, bias=False).to(torch.bfloat16)
    module = MoELoRALinear(base, 4, 8, 1, 3, get_router(router)(3, 5), name="x")
    module.eval()  # no noise: the gate is softmax(x·W_g)
    assert module.moe_lora_router.dtype == torch.float32  # fp32 master weights under a bf16 base
    x = torch.randn(4, 7, 256).to(torch.bfloat16)
    module.task_ids = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        y = module(x)
    gates = module.last_route[0]
    oracle = torch.softmax(x.double() @ module.moe_lora_router.double().t(), dim=-1)
    assert y.dtype == torch.bfloat16 and gates.dtype == torch.float32
    assert (gates.double() - oracle).abs().max() <= 1e-6


@pytest.fixture(scope="module")
def bf16_export(tmp_path_factory):
    d = tmp_path_factory.mktemp("bf16")
    tiny(torch.bfloat16).save_pretrained(d)
    return str(d)


def prepared(module):
    module.manual_backward = lambda loss: loss.backward()
    module.configure_model()
    return module


def test_adapters_keep_fp32_master_weights_and_optimizer_state_under_a_bf16_base(bf16_export):
    adapter = dict(target_modules=["q_proj", "up_proj"], **KW, router="noisy_token", dropout=0.0)
    module = prepared(MoLEModule(bf16_export, torch.optim.AdamW, dtype="bfloat16", adapter=adapter))
    trainable = [p for p in module.parameters() if p.requires_grad]
    frozen = [p for p in module.parameters() if not p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert all(p.dtype == torch.bfloat16 for p in frozen)  # the frozen base stays in model.dtype
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    ids = torch.randint(3, 120, (2, 9))
    batch = {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids), "task_ids": torch.tensor([0, 1])}
    loss, _, _ = module.accumulate([batch])
    opt.step()
    assert torch.isfinite(loss)
    for p in trainable:
        if p.grad is not None:
            assert p.grad.dtype == torch.float32 and opt.state[p]["exp_avg"].dtype == torch.float32


def test_full_fine_tuning_trains_fp32_master_weights_of_a_bf16_checkpoint(bf16_export):
    module = prepared(SFTModule(bf16_export, torch.optim.AdamW, dtype="bfloat16"))
    assert all(p.dtype == torch.float32 and p.requires_grad for p in module.parameters())
