"""MoE-LoRA module and model helpers on a tiny Llama: identity, freezing, noise, fused maths, save/load, merge,
checkpoint recompute, bad input."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaMLP

from pedgpt.adapters import (
    MoELoRALinear,
    adapter_modules,
    adapters_disabled,
    clear_task_ids,
    commit_router_stats,
    inject_moe_lora,
    load_adapter,
    merge_for_task,
    router_aux_loss,
    router_stats,
    save_adapter,
    set_task_ids,
    trainable_summary,
)

torch.set_num_threads(1)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KW = dict(target_modules=TARGETS, rank=4, alpha=8, num_universal=1, num_specific=3, router="noisy_token")
CFG = LlamaConfig(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(CFG).eval()


def randomize(model, std: float = 0.2) -> None:
    """Give every trainable adapter tensor non-trivial values (B = 0 at init makes the adapter a no-op)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "moe_lora_" in n:
                p.normal_(0, std)


@pytest.fixture
def ids():
    return torch.randint(0, CFG.vocab_size, (2, 10), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "router,extra", [("noisy_token", {}), ("token", {}), ("task", {}), ("token_task_aux", {}), ("token", {"top_k": 2})]
)
def test_identity_at_init_in_eval_and_train(router, extra, ids):
    base = tiny_llama()
    with torch.no_grad():
        ref = base(ids).logits
        model = inject_moe_lora(copy.deepcopy(base), **{**KW, "router": router}, **extra)
        set_task_ids(model, torch.tensor([0, 3]))
        assert torch.allclose(model(ids).logits, ref, atol=1e-6)
        model.train()
        assert torch.allclose(model(ids).logits, ref, atol=1e-6)


def test_only_adapter_tensors_trainable_and_summary():
    model = inject_moe_lora(tiny_llama(), **KW)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert len(trainable) == 2 * 7 * 4  # layers × adapted linears × (A, B, router, noise)
    assert all(
        n.rsplit(".", 1)[-1] in {"moe_lora_A", "moe_lora_B", "moe_lora_router", "moe_lora_noise"} for n in trainable
    )
    q = model.model.layers[0].self_attn.q_proj
    assert isinstance(q, MoELoRALinear) and q.weight.shape == (64, 64) and q.in_features == 64
    assert q.moe_lora_A.shape == (4 * 4, 64) and q.moe_lora_B.shape == (64, 16) and q.moe_lora_noise.shape == (3, 64)
    # per adapted linear: A (16·d_in) + B (d_out·16) + router and noise (2·3·d_in); head dim 16, 2 kv heads
    shapes = {"q": (64, 64), "k": (64, 32), "v": (64, 32), "o": (64, 64), "g": (64, 96), "u": (64, 96), "d": (96, 64)}
    per_layer = sum(16 * i + o * 16 + 6 * i for i, o in shapes.values())
    base_total = sum(p.numel() for p in tiny_llama().parameters())
    expected = 2 * per_layer
    assert trainable_summary(model) == (
        f"trainable params: {expected:,d} || all params: {base_total + expected:,d}"
        f" || trainable%: {100 * expected / (base_total + expected):.4f}"
    )


def test_train_noise_flag_freezes_noise_projection():
    model = inject_moe_lora(tiny_llama(), **KW, train_noise=False)
    names = [n for n, p in model.named_parameters() if "moe_lora_noise" in n]
    assert len(names) == 14 and not any(p.requires_grad for n, p in model.named_parameters() if n in names)


def test_eval_deterministic_train_noisy(ids):
    model = inject_moe_lora(tiny_llama(), **KW)
    randomize(model)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids).logits)
        model.train()
        assert not torch.allclose(model(ids).logits, model(ids).logits)
        quiet = inject_moe_lora(tiny_llama(), **{**KW, "router": "token"}).train()
        randomize(quiet)
        assert torch.equal(quiet(ids).logits, quiet(ids).logits)


def test_adapter_trains_and_disable_gives_base(ids):
    base = tiny_llama()
    model = inject_moe_lora(copy.deepcopy(base), **KW).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(6):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05
    model.eval()
    with torch.no_grad():
        ref = base(ids).logits
        assert not torch.allclose(model(ids).logits, ref, atol=1e-3)
        with adapters_disabled(model):
            assert torch.equal(model(ids).logits, ref)
        assert not torch.allclose(model(ids).logits, ref, atol=1e-3)


def test_save_load_exact_into_injected_and_plain(tmp_path, ids):
    base = tiny_llama()
    model = inject_moe_lora(copy.deepcopy(base), **KW, top_k=2)
    randomize(model)
    with torch.no_grad():
        ref = model(ids).logits
    save_adapter(model, tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["router"] == "noisy_token" and cfg["rank"] == 4 and cfg["num_specific"] == 3
    assert cfg["router_kwargs"] == {"top_k": 2, "balance_weight": 0.01, "train_noise": True}
    assert len(cfg["modules"]) == 14 and "model.layers.1.mlp.down_proj" in cfg["modules"]
    keys = set(load_file(str(tmp_path / "adapter_model.safetensors")))
    assert {
        "model.layers.0.self_attn.q_proj.moe_lora_router",
        "model.layers.0.self_attn.q_proj.moe_lora_noise",
        "model.layers.1.mlp.down_proj.moe_lora_B",
    } <= keys and len(keys) == 14 * 4
    fresh = inject_moe_lora(copy.deepcopy(base), **KW, top_k=2)
    plain = copy.deepcopy(base)
    for target in (fresh, plain):
        assert load_adapter(target, tmp_path) is target
        with torch.no_grad():
            assert torch.equal(target.eval()(ids).logits, ref)


def test_load_mismatch_names_the_module(tmp_path):
    model = inject_moe_lora(tiny_llama(), **KW)
    save_adapter(model, tmp_path)
    other_rank = inject_moe_lora(tiny_llama(), **{**KW, "rank": 2})
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.q_proj: rank=4 saved"):
        load_adapter(other_rank, tmp_path)
    fewer = inject_moe_lora(tiny_llama(), **{**KW, "target_modules": ["q_proj"]})
    with pytest.raises(ValueError, match=r"module model\.layers\.0\.self_attn\.k_proj: in the saved adapter"):
        load_adapter(fewer, tmp_path)


def test_merge_for_task_equals_unmerged(ids):
    model = inject_moe_lora(tiny_llama(), **{**KW, "router": "task"})
    randomize(model, std=0.3)
    for task in ("evidiag", "general"):
        merged = copy.deepcopy(model)
        set_task_ids(model, [task, task])
        with torch.no_grad():
            ref = model(ids).logits
            out = merge_for_task(merged, task)(ids).logits
        assert not adapter_modules(merged) and not any("moe_lora_" in n for n, _ in merged.named_parameters())
        assert torch.allclose(out, ref, atol=2e-5, rtol=1e-4)
    clear_task_ids(model)
    with pytest.raises(ValueError, match="router 'noisy_token'.*cannot be folded"):
        merge_for_task(inject_moe_lora(tiny_llama(), **KW), "medkqa")


def naive(module: MoELoRALinear, x: torch.Tensor) -> torch.Tensor:
    """Per-expert loop written from the formula, gates from softmax(x·W_g) in fp32 (eval: no noise)."""
    r, u = module.rank, module.num_universal
    a, b = module.moe_lora_A.to(x.dtype), module.moe_lora_B.to(x.dtype)
    gates = torch.softmax(x.float() @ module.moe_lora_router.float().t(), dim=-1).to(x.dtype)
    out = x @ module.base_layer.weight.t()
    for e in range(module.num_experts):
        expert = (x @ a[e * r : (e + 1) * r].t()) @ b[:, e * r : (e + 1) * r].t()
        out = out + module.scaling * (expert if e < u else gates[..., e - u : e - u + 1] * expert)
    return out


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_fused_equals_naive_loop(dtype, tol):
    model = inject_moe_lora(tiny_llama().to(dtype), **{**KW, "num_universal": 2})
    randomize(model, std=0.3)
    module = model.model.layers[0].mlp.up_proj
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(2)).to(dtype)
    with torch.no_grad():
        fused, ref = module(x), naive(module, x)
    assert fused.dtype == dtype and fused.shape == (3, 5, 96)
    assert torch.allclose(fused.float(), ref.float(), atol=tol, rtol=tol)


def test_meta_device_materialise_and_reset_gives_identity():
    with torch.device("meta"):
        mlp = LlamaMLP(CFG)
    inject_moe_lora(
        mlp,
        ["gate_proj", "up_proj", "down_proj"],
        rank=4,
        alpha=8,
        num_universal=1,
        num_specific=2,
        router="noisy_token",
    )
    assert mlp.up_proj.moe_lora_A.is_meta
    mlp.to_empty(device="cpu")
    with torch.no_grad():
        for p in mlp.parameters():
            p.fill_(float("nan"))  # what uninitialised memory may hold
    for m in mlp.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        out = mlp(x)
        with adapters_disabled(mlp):
            ref = mlp(x)
    assert torch.isfinite(out).all() and torch.equal(out, ref)


@pytest.mark.parametrize(
    "router,extra", [("token_task_aux", {"top_k": 2, "aux_weight": 0.5}), ("noisy_token", {}), ("task", {})]
)
def test_checkpoint_recompute_keeps_grads_and_stats(router, extra, ids):
    plain = inject_moe_lora(tiny_llama(), **{**KW, "router": router}, **extra)
    randomize(plain, std=0.1)
    ckpt = copy.deepcopy(plain)
    ckpt.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})  # as the stages do
    grads, counts = [], []
    for model in (plain, ckpt):
        model.train()
        set_task_ids(model, torch.tensor([1, 4]))
        torch.manual_seed(5)
        loss = model(input_ids=ids, labels=ids).loss
        commit_router_stats(model)  # the forward's routing counts; the recompute's must not
        aux = router_aux_loss(model)
        assert (aux is not None) == (router == "token_task_aux")
        (loss + aux if aux is not None else loss).backward()
        clear_task_ids(model)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        counts.append(router_stats(model)["task_counts"])
    assert ckpt.model.layers[0].gradient_checkpointing
    for n, g in grads[0].items():
        assert g is not None and g.abs().sum() > 0, n
        assert torch.allclose(g, grads[1][n], atol=1e-6, rtol=1e-4), n
    expected = torch.tensor([0.0, 10, 0, 0, 10])  # 10 tokens of task 1, 10 of task 4, counted once
    assert torch.equal(counts[0], expected) and torch.equal(counts[1], expected)


def test_bad_input_errors(ids):
    with pytest.raises(ValueError, match=r"match no nn.Linear.*lm_head.*q_proj"):
        inject_moe_lora(tiny_llama(), **{**KW, "target_modules": ["q_proj", "qkv"]})
    with pytest.raises(ValueError, match="num_specific must be >= 1"):
        inject_moe_lora(tiny_llama(), **{**KW, "num_specific": 0})
    with pytest.raises(ValueError, match="unknown router 'sparse'.*noisy_token"):
        inject_moe_lora(tiny_llama(), **{**KW, "router": "sparse"})
    with pytest.raises(ValueError, match=r"unknown kwargs \['temperature'\]"):
        inject_moe_lora(tiny_llama(), **KW, temperature=2.0)
    model = inject_moe_lora(tiny_llama(), **{**KW, "router": "task"})
    with pytest.raises(ValueError, match=r"task ids \[5\] outside the task vocabulary"):
        set_task_ids(model, torch.tensor([0, 5]))
    with pytest.raises(RuntimeError, match=r"model\.layers\.0\.self_attn\.q_proj: router 'task' needs task ids"):
        model(ids)
    aux = inject_moe_lora(tiny_llama(), **{**KW, "router": "token_task_aux"})
    aux(ids)  # eval routes by token only
    with pytest.raises(RuntimeError, match="router 'token_task_aux' needs task ids in training"):
        aux.train()(ids)
    set_task_ids(aux, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="do not match the input's leading shape"):
        aux(ids)


def test_universal_only_needs_no_router_and_merges(ids):
    model = inject_moe_lora(tiny_llama(), TARGETS, rank=4, alpha=8, num_universal=2, num_specific=0, router=None)
    randomize(model)
    module = model.model.layers[1].self_attn.o_proj
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        a, b = module.moe_lora_A, module.moe_lora_B
        expected = x @ module.weight.t() + 2.0 * sum(
            (x @ a[e * 4 : (e + 1) * 4].t()) @ b[:, e * 4 : (e + 1) * 4].t() for e in range(2)
        )
        assert torch.allclose(module(x), expected, atol=1e-5)
        ref = model(ids).logits
        assert torch.allclose(merge_for_task(model, "consult")(ids).logits, ref, atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="need a router"):
        inject_moe_lora(tiny_llama(), TARGETS, rank=4, alpha=8, num_universal=1, num_specific=2, router=None)
