"""Lightning strategies from the ``trainer.strategy`` name: ``auto`` | ``ddp`` | ``fsdp`` (FSDP2)."""

from __future__ import annotations

from typing import Any, get_args

import torch
from lightning.fabric.connector import _PRECISION_INPUT
from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy


def world_size_of(trainer_kwargs: dict[str, Any]) -> int:
    devices = trainer_kwargs.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        n = len(devices)
    elif isinstance(devices, int) or (isinstance(devices, str) and devices.lstrip("-").isdigit()):
        n = int(devices)
    else:
        n = -1  # "auto": resolved by Lightning
    return n * int(trainer_kwargs.get("num_nodes", 1) or 1) if n > 0 else -1


def check_devices(trainer_kwargs: dict[str, Any]) -> None:
    """Fail at startup, with the config key, for impossible accelerator/device requests."""
    acc = trainer_kwargs.get("accelerator", "auto")
    devices = trainer_kwargs.get("devices", 1)
    n = (
        int(devices)
        if isinstance(devices, int) or (isinstance(devices, str) and devices.lstrip("-").isdigit())
        else None
    )
    if n is not None and n < 1 and n != -1:
        raise ValueError(f"trainer.devices: must be a count >= 1, -1 (all), a list of ids or auto, got {devices}")
    if acc in ("cuda", "gpu"):
        have = torch.cuda.device_count()
        if have == 0:
            raise ValueError(
                f"trainer.accelerator={acc}: no CUDA device on this machine; "
                "on CPU use trainer.accelerator=cpu (FSDP runs there with gloo)"
            )
        if n is not None and n > have:
            raise ValueError(f"trainer.devices={n}: only {have} CUDA device(s) on this machine")
    if acc == "cpu" and n is not None and n > 64:
        raise ValueError(f"trainer.devices={n}: too many CPU processes requested")


STRATEGIES = ("auto", "ddp", "fsdp")


def precision_names() -> tuple[str, ...]:
    """Every ``precision`` value the installed Lightning accepts (its own list: ``32-true``, ``bf16-mixed``, ...,
    and the short aliases)."""

    def flat(t: Any) -> list[str]:
        args = get_args(t)
        return [str(a) for x in args for a in (flat(x) if get_args(x) else [x])]

    return tuple(dict.fromkeys(flat(_PRECISION_INPUT)))


def strategy_names() -> tuple[str, ...]:
    return STRATEGIES


def build_strategy(name: str, trainer_kwargs: dict[str, Any]):
    """``fsdp`` → ModelParallelStrategy with data-parallel size = all processes and tensor-parallel size 1.

    (Its ``"auto"`` sizes would make ``devices`` the tensor-parallel size, which shards nothing for a
    model that does not apply tensor parallelism.)
    """
    check_devices(trainer_kwargs)
    if name in (None, "auto"):
        return "auto"
    if name == "ddp":
        return DDPStrategy(find_unused_parameters=False)
    if name == "fsdp":
        ws = world_size_of(trainer_kwargs)
        if ws <= 0:
            raise ValueError("trainer.devices: give a number of processes for trainer=fsdp (e.g. trainer.devices=8)")
        return ModelParallelStrategy(data_parallel_size=ws, tensor_parallel_size=1, save_distributed_checkpoint=True)
    raise ValueError(f"trainer.strategy={name!r} is not supported; use auto, ddp or fsdp")
