"""MoE-of-LoRA around a frozen ``nn.Linear``: ``h = W₀x + (α/r)·(Σ_u E_u(x) + Σ_j G(x)_j·E_j(x))``.

All experts are computed with two matmuls (docs/architecture.md, "MoE-LoRA")::

    z = x @ [A_1 … A_E | W_router …]ᵀ          (d_in → E·r + P)   router projections ride along
    g = router(z[..., E·r:])                     fp32 gates over the S specific experts
    h = z[..., :E·r] scaled per expert r-slice   universal experts by α/r, specific ones by g·α/r
    y = W₀x + h @ Bᵀ                             (E·r → d_out), one addmm onto the base output

so no ``[..., E, d_out]`` tensor is ever formed. Dropout, when set, applies to the input of that first
matmul, so the router sees the same dropped-out input as the experts. Every adapter tensor is an ``nn.Parameter`` named
``moe_lora_<name>`` on this module: ``moe_lora_A`` (E·r, d_in), ``moe_lora_B`` (d_out, E·r) and the
router's own (``moe_lora_router``, ``moe_lora_noise``, ``moe_lora_task_logits``).

Routing state lives in attributes set from outside (``task_ids``, ``disabled``); the module keeps the
last forward's auxiliary loss (``aux_loss``) and its detached gates (``last_route``). Statistics are
accumulated only when the caller commits them after its forward (``commit_stats``; the model-level
:func:`pedgpt.adapters.commit_router_stats`), so an activation-checkpoint recompute inside the backward pass —
which repeats the forward with the same inputs — never counts twice.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from pedgpt.adapters.routers import Router

PREFIX = "moe_lora_"
_LOG2E = 1.4426950408889634


class MoELoRALinear(nn.Module):
    """A frozen ``base_layer`` plus ``num_universal`` always-on and ``num_specific`` gated LoRA experts.

    Input (..., d_in) → output (..., d_out), like the ``nn.Linear`` it wraps.
    """

    injection: dict[str, Any]  # the inject_moe_lora arguments (set by inject_moe_lora; saved in adapter_config.json)

    def __init__(
        self,
        base_layer: nn.Linear,
        rank: int,
        alpha: float,
        num_universal: int,
        num_specific: int,
        router: Router | None,
        dropout: float = 0.0,
        name: str = "",
    ) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        self.num_universal, self.num_specific = num_universal, num_specific
        self.num_experts = num_universal + num_specific
        self.router = router
        self.adapter_name = name
        self.moe_lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # trainable tensors keep fp32 master weights whatever the frozen base's dtype; forward casts to the input's
        dev, dt = base_layer.weight.device, torch.float32
        er = self.num_experts * rank
        self.moe_lora_A = nn.Parameter(torch.empty(er, base_layer.in_features, device=dev, dtype=dt))
        self.moe_lora_B = nn.Parameter(torch.empty(base_layer.out_features, er, device=dev, dtype=dt))
        shapes = router.param_shapes(base_layer.in_features) if router is not None else {}
        for key, shape in shapes.items():
            trainable = router is not None and router.trainable(key)
            param = nn.Parameter(torch.empty(shape, device=dev, dtype=dt), requires_grad=trainable)
            self.register_parameter(PREFIX + key, param)
        self._router_keys = tuple(shapes)
        self.disabled = False
        self.task_ids: torch.Tensor | None = None
        self.token_mask: torch.Tensor | None = None
        self.aux_loss: torch.Tensor | None = None
        self.last_route: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self.stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.fused = True  # False: always the autograd path (the reference the fused kernel is tested against)
        self.reset_parameters()

    # --- the nn.Linear contract ---------------------------------------------------------------------
    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def extra_repr(self) -> str:
        router = self.router.name if self.router is not None else None
        return (
            f"rank={self.rank}, alpha={self.alpha}, num_universal={self.num_universal}, "
            f"num_specific={self.num_specific}, router={router}"
        )

    # --- parameters ----------------------------------------------------------------------------------
    def router_params(self) -> dict[str, nn.Parameter]:
        return {key: getattr(self, PREFIX + key) for key in self._router_keys}

    def reset_parameters(self) -> None:
        """A kaiming-uniform (as peft), B = 0 (identity), router init; the base layer is left alone."""
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.moe_lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.moe_lora_B)
            if self.router is not None:
                self.router.reset(self.router_params())

    # --- forward -------------------------------------------------------------------------------------
    def _task_ids_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """Task ids broadcast to x's leading shape (...), or None; raises if the router needs them."""
        ids = self.task_ids
        if ids is None:
            if self.router is not None and self.router.needs_task_ids(self.training):
                mode = "training" if self.training else "every"
                raise RuntimeError(
                    f"{self.adapter_name}: router {self.router.name!r} needs task ids in {mode} "
                    f"forward; call pedgpt.adapters.set_task_ids(model, task_ids) first"
                )
            return None
        lead = x.shape[:-1]
        if tuple(ids.shape) != tuple(lead[: ids.dim()]):
            raise ValueError(
                f"{self.adapter_name}: task ids of shape {tuple(ids.shape)} do not match the input's "
                f"leading shape {tuple(lead)}; pass (batch,) or (batch, seq) ids"
            )
        ids = ids.to(x.device, non_blocking=True)
        return ids.view(*ids.shape, *([1] * (len(lead) - ids.dim()))).expand(lead)

    def _token_mask_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """The real-token mask broadcast to x's leading shape (...) as bool, or None (every token counts)."""
        mask = self.token_mask
        if mask is None:
            return None
        lead = x.shape[:-1]
        if tuple(mask.shape) != tuple(lead):
            raise ValueError(
                f"{self.adapter_name}: token mask of shape {tuple(mask.shape)} does not match the input's leading "
                f"shape {tuple(lead)}"
            )
        return mask.to(x.device, dtype=torch.bool, non_blocking=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.disabled:
            return self.base_layer(x)
        ids = self._task_ids_for(x)
        router = self.router
        dt = x.dtype
        drop = self.moe_lora_dropout
        xin = x if type(drop) is nn.Identity else drop(x)  # (an Identity module call costs more than a layer's router)
        if router is None:
            return self._add_up(self.base_layer(x), F.linear(xin, self.moe_lora_A.to(dt)) * self.scaling)
        keys = router.projections(self.training)
        mask = self._token_mask_for(x)
        # router logits in fp32: they ride in the first matmul when that matmul runs in fp32 anyway
        ride = bool(keys) and dt == torch.float32 and not torch.is_autocast_enabled(x.device.type)
        if ride and self.fused and router.dense_softmax(self.training) and self.moe_lora_A.dtype == dt:
            base = self.base_layer
            inline = xin is x and _plain_frozen_linear(base, dt)  # the base matmuls join the kernel
            y, gates = _FusedTokenMoE.apply(
                xin,
                None if inline else base(x),
                base.weight if inline else None,
                base.bias if inline else None,
                self.moe_lora_B,
                self.scaling,
                self.num_universal,
                self.moe_lora_A,
                *[getattr(self, PREFIX + k) for k in keys],
            )
            if self.aux_loss is not None:
                self.aux_loss = None
            self.last_route = (gates.detach(), ids, mask) if ids is not None else None
            return y
        out = self.base_layer(x)
        projections = [getattr(self, PREFIX + k) for k in keys]
        weight: torch.Tensor = torch.cat([self.moe_lora_A, *projections]) if ride else self.moe_lora_A
        z = F.linear(xin, weight.to(dt))
        er = self.num_experts * self.rank
        proj = None
        if ride:
            proj = z[..., er:]
        elif keys:
            with torch.autocast(x.device.type, enabled=False):
                proj = F.linear(xin.float(), torch.cat(projections).float())
        gates, aux = router.gates(proj, ids, self.router_params(), self.training, mask)
        self.aux_loss = aux
        self.last_route = (gates.detach(), ids, mask) if ids is not None else None
        scale = F.pad(gates * self.scaling, (self.num_universal, 0), value=self.scaling).to(dt)
        h = z[..., :er].unflatten(-1, (self.num_experts, self.rank)) * scale.unsqueeze(-1)
        return self._add_up(out, h.flatten(-2))

    def _add_up(self, out: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """out + h @ Bᵀ as one addmm (no separate pass over the (..., d_out) output). h: (..., E·r)."""
        b = self.moe_lora_B.to(h.dtype)
        flat = torch.addmm(out.reshape(-1, out.shape[-1]), h.reshape(-1, h.shape[-1]), b.t())
        return flat.view(out.shape)

    @torch.no_grad()
    def commit_stats(self) -> None:
        """Add the last forward's per-task gate sums (T, S), token counts (T,) and entropy sum () to ``stats`` —
        on device, no sync — and forget that forward."""
        if self.last_route is None:
            return
        gates, ids, mask = self.last_route
        self.last_route = None
        g = gates.float().reshape(-1, self.num_specific)
        t = ids.reshape(-1)
        if mask is not None:  # real tokens only
            keep = mask.reshape(-1)
            g, t = g[keep], t[keep]
        if self.stats is None:
            assert self.router is not None
            num_tasks = self.router.num_tasks
            self.stats = (g.new_zeros(num_tasks, self.num_specific), g.new_zeros(num_tasks), g.new_zeros(()))
        gate_sum, count, entropy = self.stats
        gate_sum.index_add_(0, t, g)
        count.index_add_(0, t, torch.ones_like(t, dtype=count.dtype))
        entropy.add_(torch.special.entr(g).sum())

    # --- merging -------------------------------------------------------------------------------------
    @torch.no_grad()
    def merged_weight(self, task: int | None) -> torch.Tensor:
        """W₀ + (α/r)·Σ_e g_e·B_e·A_e for a task gate (task router) or no gate (no specific experts)."""
        if self.router is not None and not self.router.mergeable:
            raise ValueError(
                f"{self.adapter_name}: router {self.router.name!r} gates depend on the token and "
                f"cannot be folded into weights; only router 'task' (or no router) can be merged"
            )
        scale = torch.full((self.num_experts,), self.scaling, device=self.weight.device)
        if self.router is not None:
            scale[self.num_universal :] *= self.router.task_gates(self.router_params())[task]
        b = self.moe_lora_B.float() * scale.repeat_interleave(self.rank)
        return (self.weight.float() + b @ self.moe_lora_A.float()).to(self.weight.dtype)


def _plain_frozen_linear(layer: nn.Module, dtype: torch.dtype) -> bool:
    """Whether ``layer`` is exactly a frozen ``nn.Linear`` of ``dtype`` without hooks, so that the fused kernel may
    compute its matmuls itself (an FSDP-wrapped, quantised or hooked base layer keeps its own forward)."""
    return (
        type(layer) is nn.Linear
        and not layer._forward_hooks
        and not layer._forward_pre_hooks
        and not layer._backward_hooks
        and not layer._backward_pre_hooks
        and not _global_forward_hooks
        and not _global_forward_pre_hooks
        and all(
            type(p) is nn.Parameter and not p.requires_grad and p.dtype == dtype
            for p in layer._parameters.values()
            if p is not None
        )
    )


class _FusedTokenMoE(torch.autograd.Function):
    """The fp32 forward and backward of a dense softmax token router (``Router.dense_softmax``) in one autograd node.

    Inputs: x (..., d_in); either the base layer's output (..., d_out) or (None and) its frozen weight and bias,
    whose matmuls the kernel then runs itself; B, α/r, the number of universal experts, A and the router
    projections (``router`` [, ``noise``]). Returns y = base + h·Bᵀ (..., d_out) and the gates (..., S), not
    differentiable. The maths of the autograd path (same noise draw, same exp2 softmax) in a dozen kernels per
    direction instead of some fifty: at adapter sizes each op costs more in dispatch and autograd bookkeeping than in
    arithmetic. The per-expert scale is an (N, E) tensor broadcast over each expert's r columns, never an (N, E·r)
    one. The backward writes the gradient of z = x·[A | W_g | W_n]ᵀ into one (N, E·r + P) buffer, so one matmul
    gives the gradients of A and of the router projections together (as row views of one tensor); with the base
    inside, y is accumulated in place into the base output and the input gradient of base and adapter is one
    matmul plus one accumulating matmul (no separate (N, d_in) sum of two gradients).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        out: torch.Tensor | None,
        w0: torch.Tensor | None,
        bias: torch.Tensor | None,
        b: torch.Tensor,
        scaling: float,
        num_universal: int,
        a: torch.Tensor,
        *projections: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Every tensor call from Python costs microseconds of binding and dispatch, more than the arithmetic at adapter
        # sizes: one split instead of slices, addcmul instead of a multiply and an add, the gate scale kept for backward.
        ctx.set_materialize_grads(False)  # no zeros for the gates' (absent) gradient
        er, s = a.shape[0], projections[0].shape[0]
        num_experts = num_universal + s
        sizes = [er, s, s][: 1 + len(projections)]
        x2 = x.reshape(-1, x.shape[-1])
        weight = torch.cat([a, *projections])
        z = torch.mm(x2, weight.t())  # (N, E·r + P)
        zh, logits, *noise = z.split(sizes, 1)
        dnoise = None
        if noise:  # noisy router in training: logits + ε·softplus(x·W_n), ε drawn as the autograd path draws it
            eps = torch.randn_like(logits)
            logits = torch.addcmul(logits, eps, F.softplus(noise[0]))
            dnoise = eps.mul_(torch.sigmoid(noise[0]))  # ∂logits/∂(x·W_n)
        gates = (logits - logits.amax(1, keepdim=True)).mul_(_LOG2E).exp2_()  # softmax_fp32
        gates = gates.div_(gates.sum(1, keepdim=True))
        gs = gates * scaling  # (N, S): the specific experts' scale
        scale = torch.constant_pad_nd(gs, (num_universal, 0), scaling).unsqueeze_(2)  # (N, E, 1)
        zh = zh.view(-1, num_experts, er // num_experts)
        h = torch.mul(zh, scale).view(-1, er)
        if out is None:  # the base layer inside: y = x·W₀ᵀ (+ bias), then h·Bᵀ added in place
            assert w0 is not None
            y = F.linear(x2, w0, bias).addmm_(h, b.t())
            out_shape = (*x.shape[:-1], w0.shape[0])
        else:
            y = torch.addmm(out.reshape(-1, out.shape[-1]), h, b.t())
            out_shape = out.shape
        ctx.save_for_backward(x2, weight, z, zh, b, h, scale, gates, gs, dnoise, w0)
        ctx.dims = (x.shape, out_shape, sizes, num_universal)
        route = gates.view(*x.shape[:-1], s)
        ctx.mark_non_differentiable(route)  # the returned tensor itself, so that it carries no gradient
        return y.view(out_shape), route

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gy: torch.Tensor | None, _: None) -> tuple[torch.Tensor | None, ...]:
        x, weight, z, zh, b, h, scale, gates, gs, dnoise, w0 = ctx.saved_tensors
        x_shape, out_shape, sizes, u = ctx.dims
        need = ctx.needs_input_grad
        if gy is None:
            return (None,) * len(need)
        gy = gy.reshape(-1, gy.shape[-1])
        gh = torch.mm(gy, b).view(zh.shape)  # (N, E, r)
        gz = torch.empty_like(z)
        gzh, glogits, *gnoise = gz.split(sizes, 1)
        torch.mul(gh, scale, out=gzh.view(zh.shape))
        # ∂L/∂gate_j = (α/r)·Σ_r gh·z over expert j's r columns; through the softmax: g·(v − Σ g·v)
        v = torch.mul(gh, zh).sum(2).narrow(1, u, gates.shape[1])  # (N, S)
        torch.mul(gs, v - torch.mul(v, gates).sum(1, keepdim=True), out=glogits)
        if dnoise is not None:
            torch.mul(glogits, dnoise, out=gnoise[0])
        gx = None
        if need[0]:
            gx = torch.mm(gz, weight)
            if w0 is not None:
                gx = gx.addmm_(gy, w0)  # base and adapter input gradients in one accumulation
            gx = gx.view(x_shape)
        grads: list[torch.Tensor | None] = [
            gx,
            gy.view(out_shape) if need[1] else None,
            None,  # the base weight and bias are frozen (or the base ran outside)
            None,
            torch.mm(gy.t(), h) if need[4] else None,
            None,
            None,
        ]
        if any(need[7:]):  # A and the router projections: row blocks of one matmul
            gw = torch.mm(gz.t(), x).split(sizes, 0)
            grads += [g if want else None for g, want in zip(gw, need[7:])]
        else:
            grads += [None] * len(need[7:])
        return tuple(grads)
