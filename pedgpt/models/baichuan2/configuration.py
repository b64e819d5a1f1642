"""``Baichuan2Config``: the configuration of pedgpt's native Baichuan2 (model type ``baichuan2``).

One config covers both released shapes: ``position_embedding="rope"`` is Baichuan2-7B (rotary, θ = ``rope_theta``),
``"alibi"`` is Baichuan2-13B (ALiBi biases, no position embeddings). ``official_config`` keeps the official
``config.json`` a checkpoint was converted from, so converting back restores every official key.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

POSITION_EMBEDDINGS = ("rope", "alibi")


class Baichuan2Config(PretrainedConfig):
    """Shapes and options of a Baichuan2 decoder (MHA, SwiGLU MLP, RMSNorm, fused ``W_pack``, NormHead)."""

    model_type = "baichuan2"
    keys_to_ignore_at_inference = ["past_key_values", "cache"]

    def __init__(
        self,
        vocab_size: int = 125696,
        hidden_size: int = 4096,
        intermediate_size: int = 11008,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        hidden_act: str = "silu",
        rms_norm_eps: float = 1e-6,
        position_embedding: str = "rope",
        rope_theta: float = 10000.0,
        max_position_embeddings: int = 4096,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        pad_token_id: int | None = 0,
        bos_token_id: int | None = 1,
        eos_token_id: int | None = 2,
        tie_word_embeddings: bool = False,
        official_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got {position_embedding!r}")
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )
        if position_embedding == "rope" and (hidden_size // num_attention_heads) % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {hidden_size // num_attention_heads}")
        if hidden_act != "silu":
            raise ValueError(f"Baichuan2 uses a SwiGLU MLP (hidden_act='silu'), got {hidden_act!r}")
        if tie_word_embeddings:
            raise ValueError("Baichuan2 has an untied NormHead; tie_word_embeddings must be false")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.rms_norm_eps = rms_norm_eps
        self.position_embedding = position_embedding
        self.rope_theta = rope_theta
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.official_config = dict(official_config) if official_config is not None else None
        kwargs.update(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
        )
        super().__init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @head_dim.setter
    def head_dim(self, value: int) -> None:  # generic code may set it; it is always hidden_size / heads here
        if value != self.hidden_size // self.num_attention_heads:
            raise ValueError(f"head_dim {value} != hidden_size / num_attention_heads for Baichuan2")
