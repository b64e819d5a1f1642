"""Router registry, router gates, the auxiliary losses (checked against hand computations) and routing stats."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.adapters import (
    Router,
    adapter_modules,
    commit_router_stats,
    get_router,
    inject_moe_lora,
    register_router,
    router_aux_loss,
    router_stats,
    set_task_ids,
)
from pedgpt.adapters.routers import softmax_fp32
from pedgpt.losses.router import load_balancing_loss, mutual_information, task_expert_joint, task_expert_mi_loss

torch.set_num_threads(1)
CFG = LlamaConfig(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)
KW = dict(rank=4, alpha=8, num_universal=1, num_specific=3)
IDS = torch.randint(0, 96, (2, 10), generator=torch.Generator().manual_seed(3))


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(CFG).eval()


def hand_mi(gates: list[list[float]], tasks: list[int]) -> float:
    """I(T; E) from per-token gate rows, written out with loops."""
    n, s = len(gates), len(gates[0])
    joint: dict[tuple[int, int], float] = {}
    for row, t in zip(gates, tasks):
        for e in range(s):
            joint[t, e] = joint.get((t, e), 0.0) + row[e] / n
    p_t = {t: sum(joint[t, e] for e in range(s)) for t in set(tasks)}
    p_e = [sum(joint[t, e] for t in set(tasks)) for e in range(s)]
    return sum(v * math.log(v / (p_t[t] * p_e[e])) for (t, e), v in joint.items() if v > 0)


# --- pure losses -------------------------------------------------------------------------------------
def test_mutual_information_matches_hand_table():
    gates = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    tasks = torch.tensor([0, 0, 1, 1])
    joint = task_expert_joint(gates, tasks, num_tasks=2)
    assert torch.allclose(joint, torch.tensor([[0.4, 0.1], [0.15, 0.35]]))
    # H(E) - H(E|T) with p(e) = (0.55, 0.45), p(e|t0) = (0.8, 0.2), p(e|t1) = (0.3, 0.7)
    h = lambda *p: -sum(x * math.log(x) for x in p)  # noqa: E731
    expected = h(0.55, 0.45) - 0.5 * h(0.8, 0.2) - 0.5 * h(0.3, 0.7)
    assert mutual_information(joint).item() == pytest.approx(expected, rel=1e-5)
    # tasks absent from the batch (ids 2..4 of a 5-task vocabulary) change nothing
    assert task_expert_mi_loss(gates, tasks, num_tasks=5).item() == pytest.approx(-expected, rel=1e-5)


def test_mutual_information_extremes_and_optimisation():
    one_hot = torch.eye(3).repeat(4, 1)  # task t always on expert t, balanced
    tasks = torch.arange(3).repeat(4)
    assert mutual_information(task_expert_joint(one_hot, tasks, 5)).item() == pytest.approx(math.log(3), rel=1e-5)
    same = torch.tensor([[0.5, 0.3, 0.2]]).repeat(12, 1)  # expert use independent of the task
    assert mutual_information(task_expert_joint(same, tasks, 5)).item() == pytest.approx(0.0, abs=1e-6)
    # minimising the loss over free logits drives expert use towards one expert per task
    logits = (0.1 * torch.randn(12, 3, generator=torch.Generator().manual_seed(0))).requires_grad_()
    for _ in range(100):
        loss = task_expert_mi_loss(torch.softmax(logits, -1), tasks, 5)
        (grad,) = torch.autograd.grad(loss, logits)
        logits.data -= 5.0 * grad
    assert -loss.item() > 0.9 * math.log(3)


def test_load_balancing_loss_hand_values():
    probs = torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.1, 0.9]])
    top = torch.tensor([[0], [0], [0], [1]])
    # f = (0.75, 0.25), P = (0.55, 0.45): 2 · (0.75·0.55 + 0.25·0.45) = 1.05
    assert load_balancing_loss(probs, top).item() == pytest.approx(1.05, rel=1e-6)
    assert load_balancing_loss(torch.full((4, 2), 0.5), torch.tensor([[0], [1], [0], [1]])).item() == pytest.approx(1.0)


# --- router objects ----------------------------------------------------------------------------------
def test_softmax_fp32_matches_torch_softmax():
    logits = torch.tensor([[0.0, 1.0, -2.0], [80.0, 79.0, -90.0], [3.0, 3.0, 3.0]], dtype=torch.bfloat16)
    out = softmax_fp32(logits)
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.softmax(logits.float(), -1), atol=1e-6, rtol=1e-5)


def test_token_and_noisy_token_gates():
    proj = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    token = get_router("token")(3, 5)
    gates, aux = token.gates(proj[:, :3], None, {}, training=True)
    assert aux is None and torch.allclose(gates, torch.softmax(proj[:, :3], -1))
    noisy = get_router("noisy_token")(3, 5)
    assert noisy.projections(True) == ("router", "noise") and noisy.projections(False) == ("router",)
    assert torch.allclose(noisy.gates(proj[:, :3], None, {}, training=False)[0], torch.softmax(proj[:, :3], -1))
    assert not torch.allclose(noisy.gates(proj, None, {}, training=True)[0], torch.softmax(proj[:, :3], -1))
    silent = torch.cat([proj[:, :3], torch.full((5, 3), -60.0)], -1)  # softplus(-60) ≈ 0: no noise
    assert torch.allclose(noisy.gates(silent, None, {}, training=True)[0], torch.softmax(proj[:, :3], -1))


def test_top_k_keeps_k_largest_and_balances():
    router = get_router("token")(4, 5, top_k=2, balance_weight=0.5)
    proj = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.1, 0.2, 5.0]])
    gates, aux = router.gates(proj, None, {}, training=True)
    p = torch.softmax(proj, -1)
    expected = torch.zeros(2, 4)
    expected[0, [1, 2]] = p[0, [1, 2]] / p[0, [1, 2]].sum()
    expected[1, [3, 2]] = p[1, [3, 2]] / p[1, [3, 2]].sum()
    assert torch.allclose(gates, expected)
    # assignments e1, e2, e3, e2 → f = (0, 1/4, 1/2, 1/4)
    frac = torch.tensor([0.0, 0.25, 0.5, 0.25])
    assert aux.item() == pytest.approx(0.5 * 4 * (frac * p.mean(0)).sum().item(), rel=1e-6)
    assert router.gates(proj, None, {}, training=False)[1] is None


def test_task_router_gates_and_token_task_aux_loss():
    task = get_router("task")(3, 5)
    logits = torch.nn.Parameter(torch.randn(5, 3))
    ids = torch.tensor([[4, 4], [0, 1]])
    gates, _ = task.gates(None, ids, {"task_logits": logits}, training=True)
    assert gates.shape == (2, 2, 3) and torch.allclose(gates[1, 1], torch.softmax(logits[1], -1))
    aux_router = get_router("token_task_aux")(3, 5, aux_weight=0.3)
    proj = torch.randn(2, 2, 3)
    gates, aux = aux_router.gates(proj, ids, {}, training=True)
    rows = torch.softmax(proj, -1).reshape(-1, 3).tolist()
    assert aux.item() == pytest.approx(-0.3 * hand_mi(rows, ids.reshape(-1).tolist()), rel=1e-5)


def test_router_argument_errors():
    with pytest.raises(ValueError, match="top_k must be in"):
        get_router("noisy_token")(3, 5, top_k=4)
    with pytest.raises(ValueError, match="num_specific must be >= 1"):
        get_router("task")(0, 5)
    with pytest.raises(ValueError, match="already registered"):
        register_router("token")(Router)


# --- in a model --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "router,extra",
    [("noisy_token", {}), ("token", {}), ("task", {}), ("token_task_aux", {}), ("noisy_token", {"top_k": 1})],
)
def test_each_router_trains_in_a_model(router, extra):
    model = inject_moe_lora(tiny_llama(), ["q_proj", "down_proj"], **KW, router=router, **extra).train()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("moe_lora_B") or n.endswith("task_logits"):
                p.normal_(0, 0.1)
    set_task_ids(model, torch.tensor([2, 3]))
    loss = model(input_ids=IDS, labels=IDS).loss
    aux = router_aux_loss(model)
    (loss if aux is None else loss + aux).backward()
    routing = [p for n, p in model.named_parameters() if n.endswith(("moe_lora_router", "moe_lora_task_logits"))]
    assert routing and all(p.grad is not None and p.grad.abs().sum() > 0 for p in routing)


def test_registered_custom_router_is_usable():
    @register_router("test_first_expert")
    class FirstExpert(Router):  # all weight on specific expert 0
        def param_shapes(self, in_features):
            return {}

        def reset(self, params):
            pass

        def gates(self, proj, task_ids, params, training, mask=None):
            return torch.nn.functional.one_hot(torch.tensor(0), self.num_specific).float(), None

    assert get_router("test_first_expert") is FirstExpert
    model = inject_moe_lora(tiny_llama(), ["o_proj"], **KW, router="test_first_expert")
    with torch.no_grad():
        assert torch.isfinite(model(IDS).logits).all()


def test_router_aux_loss_sums_weighted_mi_over_layers():
    model = inject_moe_lora(tiny_llama(), ["q_proj"], **KW, router="token_task_aux", aux_weight=0.2)
    assert router_aux_loss(model) is None
    inputs = []
    for _, m in adapter_modules(model):
        m.moe_lora_B.data.normal_(0, 0.1)
        m.register_forward_hook(lambda mod, args, out: inputs.append((mod, args[0].detach())))
    set_task_ids(model, torch.tensor([1, 4]))
    model.train()(IDS)
    tasks = [1] * 10 + [4] * 10
    expected = sum(
        -0.2 * hand_mi(torch.softmax(x @ mod.moe_lora_router.t(), -1).reshape(-1, 3).tolist(), tasks)
        for mod, x in inputs
    )
    assert len(inputs) == 2 and router_aux_loss(model).item() == pytest.approx(expected, rel=1e-4)


def test_router_stats_against_hand_gate_table():
    model = inject_moe_lora(tiny_llama(), ["v_proj", "up_proj"], **KW, router="task")
    table = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    for _, m in adapter_modules(model):
        m.moe_lora_task_logits.data.copy_(table)
    set_task_ids(model, torch.tensor([0, 3]))
    with torch.no_grad():
        model(IDS)
        commit_router_stats(model)
        set_task_ids(model, torch.tensor([0]))
        model(IDS[:1])  # 10 more tokens of task 0
        commit_router_stats(model)
        model(IDS[:1])  # not committed: not counted
    stats = router_stats(model)
    soft = lambda *z: [math.exp(v) / sum(math.exp(w) for w in z) for v in z]  # noqa: E731
    row0, row3 = soft(2, 0, 0), soft(1, 1, 3)
    expected = torch.zeros(5, 3)
    expected[0], expected[3] = torch.tensor(row0), torch.tensor(row3)
    assert torch.allclose(stats["gate_mean"], expected, atol=1e-6)
    assert torch.equal(stats["task_counts"], torch.tensor([20.0, 0, 0, 10, 0]))
    ent = lambda p: -sum(x * math.log(x) for x in p)  # noqa: E731
    assert stats["entropy"].item() == pytest.approx((20 * ent(row0) + 10 * ent(row3)) / 30, rel=1e-5)
    after = router_stats(model)  # reset by the previous call
    assert after["task_counts"].sum() == 0 and after["gate_mean"].abs().sum() == 0
    assert torch.isfinite(after["entropy"])
