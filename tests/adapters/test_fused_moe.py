"""The fused token-router kernel (``_FusedTokenMoE``) against the autograd path it replaces (``fused = False``).

Forward output, gates and every gradient (input, A, B, router, noise) agree within 1e-5 in fp32 — the noisy router
with the same noise draw (same seed), with dropout, padding masks and task ids, with and without the base matmuls
inside the kernel; router statistics are the same; paths that need autograd (bf16 autocast, a bf16 model, top-k,
``token_task_aux`` in training, a hooked base layer's forward) do not take the kernel, or keep the base outside it;
DDP and FSDP2 on two gloo processes give the reference's gradients.
"""

import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.adapters import (
    adapter_modules,
    clear_task_ids,
    commit_router_stats,
    inject_moe_lora,
    moe_lora,
    router_stats,
    set_task_ids,
    set_token_mask,
)
from pedgpt.adapters.moe_lora import MoELoRALinear
from pedgpt.adapters.routers import get_router

TOL = dict(atol=1e-5, rtol=1e-5)
D_IN, D_OUT, TASKS = 48, 40, 4


def pair(router="noisy_token", dropout=0.0, bias=True, **extra):
    """(fused module, autograd reference): identical MoE-LoRA 1u+3s r=4 around one frozen Linear, B random."""
    torch.manual_seed(0)
    base = nn.Linear(D_IN, D_OUT, bias=bias).requires_grad_(False)
    module = MoELoRALinear(base, 4, 8.0, 1, 3, get_router(router)(3, TASKS, **extra), dropout=dropout, name="t")
    nn.init.normal_(module.moe_lora_B, std=0.2)
    ref = copy.deepcopy(module)
    ref.fused = False
    return module, ref


@pytest.fixture
def kernel_calls(monkeypatch):
    """Each call of the fused kernel: whether the base weight went inside (inlined base matmuls)."""
    calls: list[bool] = []
    apply = moe_lora._FusedTokenMoE.apply

    def spy(*args):
        calls.append(args[2] is not None)
        return apply(*args)

    monkeypatch.setattr(moe_lora._FusedTokenMoE, "apply", spy)
    return calls


def inputs(seed=1, masked=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 7, D_IN, generator=g)
    ids = torch.tensor([0, 2, 3])
    mask = torch.ones(3, 7, dtype=torch.bool)
    if masked:
        mask[1, 4:], mask[2, 2:] = False, False
    return x, ids, mask, torch.randn(3, 7, D_OUT, generator=g)


def run(module, x, ids, mask, gy, seed=5, training=True):
    """Output, gates, input gradient and trainable-parameter gradients of one forward + backward."""
    module.train(training)
    module.zero_grad(set_to_none=True)
    module.task_ids, module.token_mask = ids, mask
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same noise (and dropout) draw on both paths
    y = module(x)
    gates = module.last_route[0] if module.last_route is not None else None
    (y * gy).sum().backward()
    grads = {n: p.grad for n, p in module.named_parameters() if p.requires_grad}
    return y, gates, x.grad, grads


def assert_same(a, b):
    y, gates, gx, grads = a
    y2, gates2, gx2, grads2 = b
    torch.testing.assert_close(y, y2, **TOL)
    if gates2 is not None:
        torch.testing.assert_close(gates, gates2, **TOL)
    torch.testing.assert_close(gx, gx2, **TOL)
    assert grads.keys() == grads2.keys()
    for name in grads2:
        torch.testing.assert_close(grads[name], grads2[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


CASES = {
    "noisy_token": dict(router="noisy_token"),
    "noisy_token_frozen_noise": dict(router="noisy_token", train_noise=False),
    "token": dict(router="token"),
    "noisy_token_no_bias": dict(router="noisy_token", bias=False),
    "noisy_token_top_k_all": dict(router="noisy_token", top_k=3),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("masked", [True, False])
def test_fused_kernel_equals_autograd_path_in_training(case, masked, kernel_calls):
    module, ref = pair(**CASES[case])
    x, ids, mask, gy = inputs(masked=masked)
    fused = run(module, x, ids, mask if masked else None, gy)
    assert kernel_calls == [True]  # the kernel ran, with the base matmuls inside
    assert_same(fused, run(ref, x, ids, mask if masked else None, gy))
    assert kernel_calls == [True]  # the reference did not
    assert fused[1].requires_grad is False and fused[1].shape == (3, 7, 3)
    torch.testing.assert_close(fused[1].sum(-1), torch.ones(3, 7))


def test_the_kernel_returns_gates_that_carry_no_gradient():
    module, _ = pair()
    x = inputs()[0].requires_grad_()
    base = module.base_layer
    params = (module.moe_lora_B, module.scaling, 1, module.moe_lora_A, module.moe_lora_router, module.moe_lora_noise)
    y, gates = moe_lora._FusedTokenMoE.apply(x, None, base.weight, base.bias, *params)
    assert y.requires_grad and not gates.requires_grad and gates.grad_fn is None
    assert gates.shape == (3, 7, 3)


def test_noise_is_drawn_in_training_only_and_matches_the_reference(kernel_calls):
    module, ref = pair()
    x, ids, mask, gy = inputs()
    a, b = run(module, x, ids, mask, gy, seed=5), run(module, x, ids, mask, gy, seed=6)
    assert not torch.allclose(a[0], b[0])  # another seed, another noise draw
    assert_same(run(module, x, ids, mask, gy, seed=7, training=False), run(ref, x, ids, mask, gy, training=False))
    assert_same(run(module, x, ids, mask, gy, seed=8, training=False), run(ref, x, ids, mask, gy, training=False))


def test_dropout_keeps_the_base_outside_the_kernel_and_matches(kernel_calls):
    module, ref = pair(dropout=0.1)
    x, ids, mask, gy = inputs()
    assert_same(run(module, x, ids, mask, gy), run(ref, x, ids, mask, gy))
    assert kernel_calls == [False]  # the base sees x, the experts the dropped-out input


def test_hooked_base_layer_runs_its_own_forward(kernel_calls):
    module, ref = pair()
    seen = []
    module.base_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x, ids, mask, gy = inputs()
    assert_same(run(module, x, ids, mask, gy), run(ref, x, ids, mask, gy))
    assert kernel_calls == [False] and seen == [(3, 7, D_OUT)]


def test_router_statistics_equal_the_reference_and_skip_padding(kernel_calls):
    module, ref = pair()
    x, ids, mask, gy = inputs()
    for m in (module, ref):
        run(m, x, ids, mask, gy)
        m.commit_stats()
    assert kernel_calls == [True]
    for a, b in zip(module.stats, ref.stats):
        torch.testing.assert_close(a, b, **TOL)
    assert module.stats[1].tolist() == [7, 0, 4, 2]  # tokens per task: real ones only


def test_paths_that_need_autograd_do_not_take_the_kernel(kernel_calls):
    x, ids, mask, gy = inputs()
    module, ref = pair("token_task_aux")  # its training loss needs the gates' graph
    run(module, x, ids, mask, gy)
    assert kernel_calls == [] and module.aux_loss is not None
    assert_same(run(module, x, ids, mask, gy, training=False), run(ref, x, ids, mask, gy, training=False))
    assert kernel_calls == [True]  # in eval its gates are the plain token softmax
    kernel_calls.clear()
    module, ref = pair(top_k=2)
    run(module, x, ids, mask, gy)
    assert kernel_calls == [] and module.aux_loss is not None
    module, ref = pair()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_same(run(module, x, ids, mask, gy), run(ref, x, ids, mask, gy))
    module.to(torch.bfloat16)
    run(module, x.bfloat16(), ids, mask, gy.bfloat16())
    assert kernel_calls == []


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=120,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def injected(fused: bool):
    model = inject_moe_lora(
        tiny_llama(),
        ["q_proj", "v_proj", "up_proj", "down_proj"],
        rank=4,
        alpha=8,
        num_universal=1,
        num_specific=3,
        router="noisy_token",
    )
    torch.manual_seed(3)
    for _, m in adapter_modules(model):
        nn.init.normal_(m.moe_lora_B, std=0.1)
        m.fused = fused
    return model


def model_step(model, ids, mask):
    model.train()
    set_task_ids(model, torch.tensor([1, 3]))
    set_token_mask(model, mask.bool())
    torch.manual_seed(11)
    loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    loss.backward()
    commit_router_stats(model)
    clear_task_ids(model)
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return loss, grads, router_stats(model)


def test_whole_model_loss_gradients_and_router_stats_equal_the_reference(kernel_calls):
    ids = torch.randint(3, 120, (2, 9), generator=torch.Generator().manual_seed(4))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 5:] = 0
    loss, grads, stats = model_step(injected(True), ids, mask)
    assert len(kernel_calls) == 8 and all(kernel_calls)
    loss_ref, grads_ref, stats_ref = model_step(injected(False), ids, mask)
    assert len(kernel_calls) == 8
    torch.testing.assert_close(loss, loss_ref, **TOL)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")
    assert stats.keys() == stats_ref.keys() and stats
    for key in stats:
        torch.testing.assert_close(stats[key], stats_ref[key], **TOL)
    assert stats["task_counts"].tolist()[1] == 9 and stats["task_counts"].tolist()[3] == 5  # real tokens only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wrapped_worker(rank: int, world: int, port: int, wrapper: str, q) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ids = torch.randint(3, 120, (2, 9), generator=torch.Generator().manual_seed(4 + rank))
        mask = torch.ones(2, 9, dtype=torch.long)
        mask[1, 6:] = 0
        out = []
        for fused in (True, False):
            model = injected(fused)
            if wrapper == "fsdp2":
                mesh = init_device_mesh("cpu", (world,))
                for layer in model.model.layers:
                    fully_shard(layer, mesh=mesh)
                fully_shard(model, mesh=mesh)
                net = model
            else:
                net = DistributedDataParallel(model)
            net.train()
            set_task_ids(model, torch.tensor([1, 3]))
            set_token_mask(model, mask.bool())
            torch.manual_seed(11 + rank)
            net(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss.backward()
            clear_task_ids(model)
            grads = {}
            for n, p in model.named_parameters():
                if p.grad is not None:
                    g = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
                    grads[n.replace("module.", "")] = g.tolist()  # plain lists: tensors die with the process
            out.append(grads)
            del net, model  # the wrapper goes while its process group lives (a DDP reducer freed after it can hang)
        dist.barrier()
        if rank == 0:
            q.put(out)
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.parametrize("wrapper", ["ddp", "fsdp2"])
def test_ddp_and_fsdp2_gradients_equal_the_reference(wrapper):
    env_before = dict(os.environ)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_wrapped_worker, args=(r, 2, port, wrapper, q)) for r in range(2)]
    for p in procs:
        p.start()
    fused, ref = q.get(timeout=240)
    for p in procs:
        p.join(timeout=180)  # gloo teardown of a spawned process can take long on a loaded 2-core machine
        hung = p.exitcode is None
        if hung:
            p.kill()
            p.join()
        assert not hung and p.exitcode == 0, f"{p.name}: exit code {p.exitcode}, still running 180 s after: {hung}"
    assert dict(os.environ) == env_before
    assert fused.keys() == ref.keys() and any("moe_lora_noise" in n for n in fused)
    for name in ref:
        torch.testing.assert_close(
            torch.tensor(fused[name]), torch.tensor(ref[name]), **TOL, msg=lambda m, n=name: f"{n}: {m}"
        )
