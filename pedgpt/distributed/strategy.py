"""Lightning strategies from the ``trainer.strategy`` name: ``auto`` | ``ddp`` | ``fsdp`` (FSDP2)."""
from __future__ import annotations

from typing import Any


def build_strategy(name: str, trainer_kwargs: dict[str, Any], cfg: Any = None):
    if name in (None, "auto"):
        return "auto"
    if name == "ddp":
        from lightning.pytorch.strategies import DDPStrategy
        return DDPStrategy(find_unused_parameters=False)
    raise ValueError(f"trainer.strategy={name!r} is not supported; use auto, ddp or fsdp")
