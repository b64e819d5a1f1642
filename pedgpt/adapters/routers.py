"""Router registry for MoE-LoRA: how the gate over the specific experts of one adapted layer is formed.

A router is a small policy object that holds **no tensors**: it declares the parameters it needs (the
adapter module registers them as ``moe_lora_<name>``), which of them are projections of the layer input
(those ride in the adapter's first matmul, stacked under A) and turns their outputs into fp32 gates.

Registered routers (``router=`` of :func:`pedgpt.adapters.inject_moe_lora`):

* ``noisy_token`` — the paper's gate ``softmax(x·W_g + ε·softplus(x·W_n))``, ε ~ N(0, 1) in training only;
  ``train_noise=False`` keeps W_n frozen as in the original code.
* ``token`` — ``softmax(x·W_g)``.
* ``task`` — a learned softmax per task id (``pedgpt.data.schema.TASKS``); mergeable per task.
* ``token_task_aux`` — ``token`` plus ``aux_weight`` × (−I(task; expert)), see ``pedgpt.losses.router``.

Token routers take ``top_k`` (keep the k largest gates, renormalised) with a Switch load-balancing loss
weighted by ``balance_weight``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pedgpt.losses.router import load_balancing_loss, task_expert_mi_loss

_REGISTRY: dict[str, type[Router]] = {}


def register_router(name: str) -> Callable[[type[Router]], type[Router]]:
    """Class decorator adding a :class:`Router` subclass to the registry under ``name``."""

    def add(cls: type[Router]) -> type[Router]:
        if name in _REGISTRY:
            raise ValueError(f"router {name!r} is already registered ({_REGISTRY[name].__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def get_router(name: str) -> type[Router]:
    """The router class registered under ``name``; unknown names raise with the registry listed."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown router {name!r}; registered routers: {', '.join(sorted(_REGISTRY))}") from None


class Router:
    """Gate policy of one adapted layer (no tensors of its own).

    Subclasses set ``needs_task_ids_in`` ("always", "training" or "never") and implement
    :meth:`param_shapes`, :meth:`projections`, :meth:`reset` and :meth:`gates`.
    """

    name: ClassVar[str] = ""
    needs_task_ids_in: ClassVar[str] = "never"
    mergeable: ClassVar[bool] = False

    def __init__(self, num_specific: int, num_tasks: int, **kwargs: Any) -> None:
        if num_specific < 1:
            raise ValueError(
                f"router {self.name!r} gates specific experts: num_specific must be >= 1, got {num_specific}"
            )
        self.num_specific = num_specific
        self.num_tasks = num_tasks
        if kwargs:
            raise ValueError(
                f"router {self.name!r} got unknown kwargs {sorted(kwargs)}; it accepts {sorted(self.config())}"
            )

    def config(self) -> dict[str, Any]:
        """The router kwargs that rebuild this router (saved in adapter_config.json)."""
        return {}

    def needs_task_ids(self, training: bool) -> bool:
        return self.needs_task_ids_in == "always" or (self.needs_task_ids_in == "training" and training)

    def param_shapes(self, in_features: int) -> dict[str, tuple[int, ...]]:
        """Parameter name (without the ``moe_lora_`` prefix) → shape."""
        raise NotImplementedError

    def trainable(self, name: str) -> bool:
        return True

    def projections(self, training: bool) -> tuple[str, ...]:
        """Names of (num_specific, in_features) parameters multiplied with the input, in order."""
        return ()

    def reset(self, params: dict[str, nn.Parameter]) -> None:
        raise NotImplementedError

    def dense_softmax(self, training: bool) -> bool:
        """True when :meth:`gates` is exactly ``softmax_fp32(proj[..., :S] + ε·softplus(proj[..., S:2S]))`` (the noise
        term only when :meth:`projections` lists ``noise``), every gate kept and no auxiliary loss: the adapter may
        then compute the gate and its gradient inside its fused kernel (``pedgpt.adapters.moe_lora``)."""
        return False

    def task_gates(self, params: dict[str, nn.Parameter]) -> torch.Tensor:
        """(num_tasks, S) fp32 gate table of a ``mergeable`` router (gates that depend on the task only)."""
        raise NotImplementedError(f"router {self.name!r} gates depend on the token, not only on the task")

    def gates(
        self,
        proj: torch.Tensor | None,
        task_ids: torch.Tensor | None,
        params: dict[str, nn.Parameter],
        training: bool,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Gates and the (weighted) auxiliary loss.

        proj: (..., P) fp32 outputs of :meth:`projections` stacked (None when there are none); task_ids:
        (...) long, the same leading shape, or None; mask: (...) bool, True on real tokens (None: all real).
        Returns gates (..., S) fp32 (rows sum to 1) — or (S,)-broadcastable ones — for every token, and a
        scalar aux loss in training computed over real tokens only (None when the router has none).
        """
        raise NotImplementedError


_LOG2E = 1.4426950408889634


def real_tokens(mask: torch.Tensor | None, *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each (N, ...) tensor of ``rows`` restricted to the positions where ``mask`` (any shape with N elements) is
    true; all of them unchanged without a mask. Auxiliary losses are statistics of real tokens only."""
    if mask is None:
        return rows
    keep = mask.reshape(-1)
    return tuple(r[keep] for r in rows)


def softmax_fp32(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim, in fp32. (..., S) → (..., S).

    Written as exp2 of max-shifted logits because torch's CPU ``softmax`` (forward and backward) and ``exp``
    kernels open a thread-parallel region even for a few hundred elements; when the cores are busy each
    such region waits a scheduler slice (milliseconds), per adapted layer. ``exp2`` runs inline.
    """
    z = logits.float()
    e = torch.exp2((z - z.detach().amax(-1, keepdim=True)) * _LOG2E)
    return e / e.sum(-1, keepdim=True)


def _kaiming(t: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(t, a=math.sqrt(5))  # nn.Linear's default, as the reference implementation


class TokenRouter(Router):
    """``softmax(x·W_g [+ ε·softplus(x·W_n)])`` per token, optional top-k with a balance loss."""

    noisy: ClassVar[bool] = False

    def __init__(
        self, num_specific: int, num_tasks: int, top_k: int | None = None, balance_weight: float = 0.01, **kwargs: Any
    ) -> None:
        self.top_k, self.balance_weight = top_k, float(balance_weight)
        super().__init__(num_specific, num_tasks, **kwargs)
        if top_k is not None and not 1 <= top_k <= num_specific:
            raise ValueError(f"router {self.name!r}: top_k must be in [1, num_specific={num_specific}], got {top_k}")

    def config(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "balance_weight": self.balance_weight}

    def param_shapes(self, in_features: int) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"router": (self.num_specific, in_features)}
        if self.noisy:
            shapes["noise"] = (self.num_specific, in_features)
        return shapes

    def projections(self, training: bool) -> tuple[str, ...]:
        return ("router", "noise") if self.noisy and training else ("router",)

    def reset(self, params: dict[str, nn.Parameter]) -> None:
        for p in params.values():
            _kaiming(p)

    def dense_softmax(self, training: bool) -> bool:
        return self.top_k is None or self.top_k == self.num_specific

    def probs(self, proj: torch.Tensor, training: bool) -> torch.Tensor:
        """(..., P) fp32 projections → (..., S) fp32 router probabilities (noise only in training)."""
        s = self.num_specific
        logits = proj[..., :s]
        if self.noisy and training:
            logits = logits + torch.randn_like(logits) * F.softplus(proj[..., s : 2 * s])
        return softmax_fp32(logits)

    def gates(
        self,
        proj: torch.Tensor | None,
        task_ids: torch.Tensor | None,
        params: dict[str, nn.Parameter],
        training: bool,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert proj is not None, f"router {self.name!r} needs the input projections"
        probs = self.probs(proj, training)
        if self.top_k is None or self.top_k == self.num_specific:
            return probs, None
        top_val, top_idx = probs.topk(self.top_k, dim=-1)
        gates = torch.zeros_like(probs).scatter(-1, top_idx, top_val / top_val.sum(-1, keepdim=True))
        aux = None
        if training:
            flat, idx = real_tokens(mask, probs.reshape(-1, self.num_specific), top_idx.reshape(-1, self.top_k))
            aux = self.balance_weight * load_balancing_loss(flat, idx)
        return gates, aux


@register_router("token")
class PlainTokenRouter(TokenRouter):
    pass


@register_router("noisy_token")
class NoisyTokenRouter(TokenRouter):
    noisy = True

    def __init__(self, num_specific: int, num_tasks: int, train_noise: bool = True, **kwargs: Any) -> None:
        self.train_noise = bool(train_noise)
        super().__init__(num_specific, num_tasks, **kwargs)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "train_noise": self.train_noise}

    def trainable(self, name: str) -> bool:
        return name != "noise" or self.train_noise


@register_router("token_task_aux")
class TokenTaskAuxRouter(TokenRouter):
    """Token router whose training loss adds ``aux_weight`` × (−I(task; expert)) over the layer's tokens."""

    needs_task_ids_in = "training"

    def __init__(self, num_specific: int, num_tasks: int, aux_weight: float = 0.01, **kwargs: Any) -> None:
        self.aux_weight = float(aux_weight)
        super().__init__(num_specific, num_tasks, **kwargs)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "aux_weight": self.aux_weight}

    def dense_softmax(self, training: bool) -> bool:
        return not training and super().dense_softmax(training)  # the training loss needs the autograd path

    def gates(
        self,
        proj: torch.Tensor | None,
        task_ids: torch.Tensor | None,
        params: dict[str, nn.Parameter],
        training: bool,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        gates, aux = super().gates(proj, task_ids, params, training, mask)
        if not training:
            return gates, aux
        assert task_ids is not None, f"router {self.name!r} needs task ids in training"
        flat, tasks = real_tokens(mask, gates.reshape(-1, self.num_specific), task_ids.reshape(-1))
        mi = self.aux_weight * task_expert_mi_loss(flat, tasks, self.num_tasks)
        return gates, mi if aux is None else aux + mi


@register_router("task")
class TaskRouter(Router):
    """``softmax(L[task])`` with learned logits L (num_tasks, S), zero at init (uniform gates)."""

    needs_task_ids_in = "always"
    mergeable = True

    def param_shapes(self, in_features: int) -> dict[str, tuple[int, ...]]:
        return {"task_logits": (self.num_tasks, self.num_specific)}

    def reset(self, params: dict[str, nn.Parameter]) -> None:
        nn.init.zeros_(params["task_logits"])

    def task_gates(self, params: dict[str, nn.Parameter]) -> torch.Tensor:
        """(num_tasks, S) fp32 gate table."""
        return softmax_fp32(params["task_logits"])

    def gates(
        self,
        proj: torch.Tensor | None,
        task_ids: torch.Tensor | None,
        params: dict[str, nn.Parameter],
        training: bool,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.task_gates(params)[task_ids], None
