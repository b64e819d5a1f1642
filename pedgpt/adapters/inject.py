"""Put MoE-LoRA into a model and work with it: inject, save / load, disable, route by task, merge, observe.

``inject_moe_lora`` replaces matching ``nn.Linear`` modules (by name suffix, as peft) in place and freezes
everything else. ``save_adapter`` writes ``adapter_model.safetensors`` (every ``moe_lora_*`` tensor,
routers and noise projections included) and ``adapter_config.json`` (the injection arguments and module
list); ``load_adapter`` restores them exactly, injecting first into a plain model.

Task ids are attributes of the adapter modules: ``set_task_ids`` before the forward, ``clear_task_ids``
after the optimizer step. An activation-checkpoint recompute then sees the same ids as the forward did.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pedgpt.adapters.moe_lora import MoELoRALinear
from pedgpt.adapters.routers import get_router
from pedgpt.data.schema import TASKS, task_id

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
ADAPTER_TYPE = "pedgpt_moe_lora"
_INJECTION_KEYS = ("rank", "alpha", "num_universal", "num_specific", "router", "dropout", "router_kwargs")


def adapter_modules(model: nn.Module) -> list[tuple[str, MoELoRALinear]]:
    """(qualified name, module) of every MoE-LoRA module in ``model``, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, MoELoRALinear)]


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def inject_moe_lora(
    model: nn.Module,
    target_modules: str | Sequence[str],
    rank: int,
    alpha: float,
    num_universal: int,
    num_specific: int,
    router: str | None,
    dropout: float = 0.0,
    **router_kwargs: Any,
) -> nn.Module:
    """Replace every ``nn.Linear`` whose name ends with a target by a :class:`MoELoRALinear`; freeze the rest.

    ``router=None`` is allowed only with ``num_specific=0`` (universal experts only). Returns ``model``.
    """
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if rank < 1 or num_universal < 0 or num_specific < 0 or num_universal + num_specific < 1:
        raise ValueError(
            f"need rank >= 1 and at least one expert; got rank={rank}, "
            f"num_universal={num_universal}, num_specific={num_specific}"
        )
    if router is None and num_specific:
        raise ValueError(f"num_specific={num_specific} specific experts need a router; got router=None")
    # built once up front: validates the arguments and spells out the router's defaults for the config
    full_kwargs = get_router(router)(num_specific, len(TASKS), **router_kwargs).config() if router else {}
    if adapter_modules(model):
        raise ValueError("the model already holds MoE-LoRA modules; inject once")
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    unknown = [t for t in targets if not any(_matches(n, t) for n in linears)]
    if unknown or not targets:
        names = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise ValueError(
            f"target_modules {unknown or targets} match no nn.Linear of the model; "
            f"its linear modules are: {', '.join(names)}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    config = {
        "target_modules": targets,
        "rank": rank,
        "alpha": alpha,
        "num_universal": num_universal,
        "num_specific": num_specific,
        "router": router,
        "dropout": dropout,
        "router_kwargs": full_kwargs,
    }
    for name in [n for n in linears if any(_matches(n, t) for t in targets)]:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        gate = get_router(router)(num_specific, len(TASKS), **router_kwargs) if router is not None else None
        module = MoELoRALinear(
            getattr(parent, child), rank, alpha, num_universal, num_specific, gate, dropout=dropout, name=name
        )
        module.injection = config
        module.train(parent.training)
        setattr(parent, child, module)
    return model


def _require_adapters(model: nn.Module) -> list[tuple[str, MoELoRALinear]]:
    found = adapter_modules(model)
    if not found:
        raise ValueError("the model holds no MoE-LoRA modules; call pedgpt.adapters.inject_moe_lora first")
    return found


def _full(t: torch.Tensor) -> torch.Tensor:
    """A plain local tensor (gathers a DTensor shard)."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def save_adapter(model: nn.Module, directory: str | Path) -> Path:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` to ``directory``; returns the directory."""
    found = _require_adapters(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": _full(p).detach().cpu().contiguous()
        for name, module in found
        for key, p in module.named_parameters(recurse=False)
    }
    first = found[0][1]
    config = {"adapter_type": ADAPTER_TYPE, **first.injection, "modules": [n for n, _ in found], "tasks": list(TASKS)}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return directory


def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Restore a saved adapter exactly; a plain model is injected from the saved config first. Returns model."""
    directory = Path(directory)
    config = json.loads((directory / CONFIG_NAME).read_text())
    if config.get("adapter_type") != ADAPTER_TYPE:
        raise ValueError(
            f"{directory / CONFIG_NAME}: adapter_type is {config.get('adapter_type')!r}, expected {ADAPTER_TYPE!r}"
        )
    saved_tasks = config["tasks"]
    if list(TASKS[: len(saved_tasks)]) != saved_tasks:
        raise ValueError(f"{directory / CONFIG_NAME}: tasks {saved_tasks} do not match the vocabulary {list(TASKS)}")
    if not adapter_modules(model):
        inject_moe_lora(
            model,
            config["target_modules"],
            config["rank"],
            config["alpha"],
            config["num_universal"],
            config["num_specific"],
            config["router"],
            config["dropout"],
            **config["router_kwargs"],
        )
    found = dict(adapter_modules(model))
    saved = config["modules"]
    for name in [n for n in saved if n not in found] + [n for n in found if n not in saved]:
        where = "in the saved adapter but not in the model" if name not in found else "not in the saved adapter"
        raise ValueError(f"adapter mismatch at module {name}: {where} ({directory})")
    tensors = load_file(str(directory / WEIGHTS_NAME))
    with torch.no_grad():
        for name in saved:
            module = found[name]
            for key in _INJECTION_KEYS:
                if module.injection[key] != config[key]:
                    raise ValueError(
                        f"adapter mismatch at module {name}: {key}={config[key]!r} saved, "
                        f"{module.injection[key]!r} in the model"
                    )
            for key, p in module.named_parameters(recurse=False):
                t = tensors.pop(f"{name}.{key}", None)
                if t is None or t.shape != p.shape:
                    got = "missing" if t is None else f"shape {tuple(t.shape)}"
                    raise ValueError(
                        f"adapter mismatch at module {name}: {key} is {got} in {directory}, "
                        f"model expects {tuple(p.shape)}"
                    )
                p.copy_(t)
    if tensors:
        raise ValueError(f"adapter mismatch: {directory} holds tensors the model lacks: {sorted(tensors)[:5]}")
    return model


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every adapter module returns its base layer's output (the frozen model)."""
    found = _require_adapters(model)
    before = [m.disabled for _, m in found]
    for _, m in found:
        m.disabled = True
    try:
        yield model
    finally:
        for (_, m), flag in zip(found, before):
            m.disabled = flag


def set_task_ids(model: nn.Module, task_ids: torch.Tensor | Sequence[int | str]) -> None:
    """Route the next forward(s) by task: ids (batch,) or (batch, seq) in [0, len(TASKS)), or task names.

    Call before the forward and :func:`clear_task_ids` after the optimizer step (not around the forward: an
    activation-checkpoint recompute runs during backward and must see the same ids).
    """
    if not torch.is_tensor(task_ids):
        task_ids = torch.tensor([task_id(t) if isinstance(t, str) else int(t) for t in task_ids], dtype=torch.long)
    if task_ids.dtype != torch.long:
        raise ValueError(f"task ids must be a LongTensor, got {task_ids.dtype}")
    if task_ids.numel() and (int(task_ids.min()) < 0 or int(task_ids.max()) >= len(TASKS)):
        bad = task_ids[(task_ids < 0) | (task_ids >= len(TASKS))].unique().tolist()
        raise ValueError(f"task ids {bad} outside the task vocabulary 0..{len(TASKS) - 1} ({', '.join(TASKS)})")
    for _, m in _require_adapters(model):
        m.task_ids = task_ids


def set_token_mask(model: nn.Module, mask: torch.Tensor | None) -> None:
    """Which input positions are real tokens, (batch, seq) bool (None: all): routing statistics and the routers'
    auxiliary losses count those only. Set like the task ids; :func:`clear_task_ids` clears both."""
    if mask is not None and mask.dim() != 2:
        raise ValueError(f"the token mask must be (batch, seq), got shape {tuple(mask.shape)}")
    for _, m in _require_adapters(model):
        m.token_mask = mask


def clear_task_ids(model: nn.Module) -> None:
    """Forget the routing state of the last step: task ids and token mask."""
    for _, m in adapter_modules(model):
        m.task_ids = None
        m.token_mask = None


def merge_for_task(model: nn.Module, task: str) -> nn.Module:
    """Fold a ``task``-router adapter into plain ``nn.Linear`` weights for one task; returns the model."""
    index = task_id(task)
    # all weights first, so that a non-mergeable router leaves the model untouched
    merged = [(name, m.base_layer, m.merged_weight(index)) for name, m in _require_adapters(model)]
    for name, base, weight in merged:
        with torch.no_grad():
            base.weight.copy_(weight)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, base)
    return model


def commit_router_stats(model: nn.Module) -> None:
    """Count the last forward's routing in the statistics (call after a forward whose routing should count;
    an activation-checkpoint recompute inside the backward pass is then never counted)."""
    for _, m in adapter_modules(model):
        m.commit_stats()


def router_stats(model: nn.Module, reset: bool = True) -> dict[str, torch.Tensor]:
    """Routing statistics committed since the last reset, over all gated layers (tensors on the adapters' device).

    gate_mean: (len(TASKS), num_specific) mean gate per task and specific expert (0 for unseen tasks);
    task_counts: (len(TASKS),) tokens seen per task; entropy: () mean router entropy in nats.
    """
    gated = [m for _, m in _require_adapters(model) if m.router is not None]
    if not gated:
        raise ValueError("router_stats: the adapter has no gated (specific) experts")
    device, s = gated[0].moe_lora_A.device, gated[0].num_specific
    gate_sum = torch.zeros(len(TASKS), s, device=device)
    count = torch.zeros(len(TASKS), device=device)
    entropy = torch.zeros((), device=device)
    for m in gated:
        if m.stats is not None:
            gate_sum += m.stats[0].to(device)
            count += m.stats[1].to(device)
            entropy += m.stats[2].to(device)
        if reset:
            m.stats = None
    return {
        "gate_mean": gate_sum / count.clamp_min(1).unsqueeze(-1),
        "task_counts": count / len(gated),
        "entropy": entropy / count.sum().clamp_min(1),
    }


def router_aux_loss(model: nn.Module) -> torch.Tensor | None:
    """Sum of the (already weighted) router auxiliary losses of the last forward; None if there are none."""
    losses = [m.aux_loss for _, m in adapter_modules(model) if m.aux_loss is not None]
    return torch.stack(losses).sum() if losses else None


def trainable_summary(model: nn.Module) -> str:
    """peft's one-liner: ``trainable params: X || all params: Y || trainable%: Z``."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"
