"""pedgpt's native Baichuan2 (``model_type="baichuan2"``): config, model, and registration with the Auto classes."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from pedgpt.models.baichuan2.configuration import Baichuan2Config
from pedgpt.models.baichuan2.modeling import (
    Baichuan2ForCausalLM,
    Baichuan2Model,
    Baichuan2PreTrainedModel,
    NormHead,
    alibi_slopes,
)

__all__ = [
    "Baichuan2Config",
    "Baichuan2ForCausalLM",
    "Baichuan2Model",
    "Baichuan2PreTrainedModel",
    "NormHead",
    "alibi_slopes",
    "register",
]


def register() -> None:
    """Make ``AutoConfig`` / ``AutoModel`` / ``AutoModelForCausalLM`` know ``baichuan2``; safe to call repeatedly."""
    AutoConfig.register(Baichuan2Config.model_type, Baichuan2Config, exist_ok=True)
    AutoModel.register(Baichuan2Config, Baichuan2Model, exist_ok=True)
    AutoModelForCausalLM.register(Baichuan2Config, Baichuan2ForCausalLM, exist_ok=True)
