"""pedgpt's own Baichuan2 decoder: ``Baichuan2Model`` and ``Baichuan2ForCausalLM``, written from the published
architecture (pre-norm decoder, RMSNorm, multi-head attention, SwiGLU MLP, NormHead output layer).

Design points:

* **Fused ``W_pack``.** The query, key and value projections stay one ``nn.Linear(h, 3h)`` whose rows are
  ``[q; k; v]``, exactly the official tensor: conversion is a byte-for-byte copy in both directions, the module
  names match the official code, so LoRA / MoE-LoRA target ``W_pack`` as LLaMA-Factory does, and the projection
  is one matmul per layer. A LoRA on ``W_pack`` is one rank-r update of the stacked ``[q; k; v]`` matrix.
* **Positions.** ``position_embedding="rope"`` (7B): rotary embedding with the half-split rotation
  (``rotate_half``), θ = ``config.rope_theta``, angles from ``position_ids`` so packed rows restart per document.
  ``"alibi"`` (13B): the bias ``slope_h · (key_index − query_index)`` is added to the additive float mask given
  to SDPA. Only the distance enters, so it composes exactly with a block-diagonal packing mask and with a KV cache.
* **Masks.** ``attention_mask`` may be absent (causal), a 2-D 0/1 padding mask over the keys (left or right
  padding), a 4-D additive float (or boolean) mask ``(B, 1, L, S)``, or a packed batch's
  :class:`~pedgpt.data.packing.DocumentMask`. One mask is built per forward and shared by every layer; attention
  is :func:`torch.nn.functional.scaled_dot_product_attention`.
* **Packed batches without an L × L mask.** With ``attn_implementation`` ``auto`` or ``flex`` a ``DocumentMask``
  becomes a :class:`~pedgpt.models.attention.PackedAttention` and every layer attends within each document only
  (:func:`~pedgpt.models.attention.packed_attention_forward`: FlexAttention with a document ``BlockMask`` and
  ALiBi as a ``score_mod``, FlashAttention-2 varlen with ``alibi_slopes``, or SDPA per document); RoPE angles
  come from the restarting ``position_ids`` as before. Other implementations get the dense mask.
* **NormHead.** ``lm_head.weight`` is stored un-normalised in its own dtype; every forward L2-normalises the rows
  in fp32 and casts to the compute dtype. The parameter is never modified in place.
* **Generation.** The transformers ``Cache`` API (``DynamicCache.update(k, v, layer_idx)``) under either argument
  name (``past_key_values`` in transformers 4.x, ``cache`` in 5.x); outputs use the installed version's field name.
* **Training.** Decoder layers are ``GradientCheckpointingLayer`` s (non-reentrant checkpointing through
  ``gradient_checkpointing_enable``); every custom module has ``reset_parameters`` so a model built on the meta
  device can be materialised with ``to_empty`` + ``reset_parameters`` (or ``_init_weights``); ``model.model.layers``
  is an ``nn.ModuleList`` for FSDP2 wrapping.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.models.attention import PackedAttention, model_attention_mask, packed_attention_forward
from pedgpt.models.baichuan2.configuration import Baichuan2Config

# transformers 5.x renamed the cache field of model outputs from ``past_key_values`` to ``cache``.
_CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al.), float64 ``(num_heads,)``.

    For ``n`` a power of two, head ``i`` gets ``2^(-8(i+1)/n)``. Otherwise the ``c`` slopes of the closest lower
    power of two ``c`` come first, followed by every other slope of the ``2c`` problem: ``slopes(2c)[0::2][:n-c]``.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    closest = 2 ** int(math.floor(math.log2(num_heads)))
    base = [2.0 ** (-8.0 * (i + 1) / closest) for i in range(closest)]
    extra = [2.0 ** (-8.0 * (i + 1) / (2 * closest)) for i in range(2 * closest)][0::2][: num_heads - closest]
    return torch.tensor(base + extra, dtype=torch.float64)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` over the last dimension (half-split rotary pairing)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``(B, 1, L, head_dim)`` in fp32 for integer ``position_ids`` ``(B, L)``."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=position_ids.device) / head_dim
    inv_freq = 1.0 / (theta**exponents)
    angles = position_ids.to(torch.float32)[..., None] * inv_freq
    angles = torch.cat((angles, angles), dim=-1)[:, None]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, H, L, D)`` in fp32 and return it in its own dtype."""
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


class Baichuan2RMSNorm(nn.Module):
    """RMSNorm with the variance taken in fp32 and no bias."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_size))
        self.variance_epsilon = eps
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = hidden_states.dtype
        h = hidden_states.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class NormHead(nn.Module):
    """Output layer whose weight rows are L2-normalised (in fp32) on every forward; ``head(h)`` gives logits."""

    def __init__(self, hidden_size: int, vocab_size: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, hidden_size))
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=self.init_std)

    def normalized_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The row-normalised matrix, computed in fp32 and cast to ``dtype`` (default: the stored dtype)."""
        w = F.normalize(self.weight.to(torch.float32), p=2.0, dim=-1)
        return w.to(dtype or self.weight.dtype)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden_states, self.normalized_weight(hidden_states.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class Baichuan2MLP(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Baichuan2Attention(nn.Module):
    """Multi-head self-attention with the fused ``W_pack`` projection (rows ``[q; k; v]``)."""

    def __init__(self, config: Baichuan2Config, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.hidden_size = config.hidden_size
        self.W_pack = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attn_mask: torch.Tensor | PackedAttention | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: Cache | None = None,
        alibi_slopes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``attn_mask``: the additive bias of :func:`build_attention_bias` (ALiBi included), None (causal), or a
        :class:`PackedAttention` (then ``alibi_slopes`` carries ALiBi and no KV cache is used)."""
        B, L, _ = hidden_states.shape
        qkv = self.W_pack(hidden_states).view(B, L, 3, self.num_heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(dim=2))  # (B, H, L, D) each
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if isinstance(attn_mask, PackedAttention):
            packed = packed_attention_forward(q, k, v, attn_mask, alibi_slopes=alibi_slopes)  # (B, L, H, D)
            return self.o_proj(packed.reshape(B, L, self.hidden_size))
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        causal = attn_mask is None and L > 1
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, self.hidden_size))


class Baichuan2DecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, config: Baichuan2Config, layer_idx: int) -> None:
        super().__init__()
        self.self_attn = Baichuan2Attention(config, layer_idx)
        self.mlp = Baichuan2MLP(config.hidden_size, config.intermediate_size)
        self.input_layernorm = Baichuan2RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = Baichuan2RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attn_mask: torch.Tensor | PackedAttention | None = None,
        rope_cos: torch.Tensor | None = None,
        rope_sin: torch.Tensor | None = None,
        cache: Cache | None = None,
        alibi_slopes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        rope = (rope_cos, rope_sin) if rope_cos is not None else None
        attn = self.self_attn(self.input_layernorm(hidden_states), attn_mask, rope, cache, alibi_slopes)
        hidden_states = hidden_states + attn
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class Baichuan2PreTrainedModel(PreTrainedModel):
    config_class = Baichuan2Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Baichuan2DecoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    # Official 7B checkpoints may carry the derived rotary buffer; it is recomputed here.
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, NormHead):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, Baichuan2RMSNorm):
            nn.init.ones_(module.weight)


def _padding_allowed(mask_2d: torch.Tensor, q_index: torch.Tensor, kv_len: int) -> torch.Tensor:
    """Boolean ``(B, 1, L, S)``: causal (key index ≤ query index) and the key is not padding."""
    if mask_2d.shape[-1] != kv_len:
        raise ValueError(f"2-D attention_mask covers {mask_2d.shape[-1]} keys, expected {kv_len} (cache + input)")
    k_index = torch.arange(kv_len, device=mask_2d.device)
    causal = k_index[None, :] <= q_index[:, None]
    return causal[None, None] & mask_2d.bool()[:, None, None, :]


def build_attention_bias(
    attention_mask: torch.Tensor | None,
    q_len: int,
    kv_len: int,
    dtype: torch.dtype,
    device: torch.device,
    slopes: torch.Tensor | None,
) -> torch.Tensor | None:
    """The additive float mask SDPA gets, ``(B or 1, H or 1, L, S)``, or ``None`` for plain causal attention.

    Queries sit at key indices ``kv_len - q_len .. kv_len - 1`` (a KV cache holds the earlier keys). With
    ``slopes`` (ALiBi) the bias ``slope_h · (key_index − query_index)`` is added; a 4-D mask is taken as given
    (additive float, or boolean where True = may attend). Query rows with no allowed key (padding queries) are
    opened fully so SDPA never sees an empty row; their outputs are ignored by the caller.
    """
    if attention_mask is None and slopes is None and q_len == kv_len:
        return None  # SDPA's is_causal path
    q_index = torch.arange(kv_len - q_len, kv_len, device=device)
    if attention_mask is None or attention_mask.dim() == 2:
        if attention_mask is None:
            allowed = (torch.arange(kv_len, device=device)[None, :] <= q_index[:, None])[None, None]
        else:
            allowed = _padding_allowed(attention_mask.to(device), q_index, kv_len)
        allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
        bias = torch.zeros(allowed.shape, dtype=torch.float32, device=device)
        bias.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    elif attention_mask.dim() == 4:
        if attention_mask.shape[-2:] != (q_len, kv_len):
            raise ValueError(
                f"4-D attention_mask has shape {tuple(attention_mask.shape)}, expected (B, 1, {q_len}, {kv_len})"
            )
        if attention_mask.dtype == torch.bool:
            bias = torch.zeros(attention_mask.shape, dtype=torch.float32, device=device)
            bias.masked_fill_(~attention_mask.to(device), torch.finfo(torch.float32).min)
        else:
            bias = attention_mask.to(device=device, dtype=torch.float32)
    else:
        raise ValueError(f"attention_mask must be 2-D (B, S) or 4-D (B, 1, L, S), got {attention_mask.dim()}-D")
    floor = torch.finfo(dtype).min
    if slopes is None:
        return bias.clamp(min=floor).to(dtype)
    # key_index - query_index; one head at a time so the fp32 temporary is (B, L, S), not (B, H, L, S)
    distance = (torch.arange(kv_len, device=device)[None, :] - q_index[:, None]).to(torch.float32)
    out = torch.empty((bias.shape[0], len(slopes), q_len, kv_len), dtype=dtype, device=device)
    for h, slope in enumerate(slopes.to(torch.float32).tolist()):
        out[:, h] = (bias[:, h if bias.shape[1] > 1 else 0] + slope * distance).clamp_(min=floor)
    return out


class Baichuan2Model(Baichuan2PreTrainedModel):
    """Embedding, ``num_hidden_layers`` decoder layers, final RMSNorm; returns ``last_hidden_state``."""

    def __init__(self, config: Baichuan2Config) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(Baichuan2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = Baichuan2RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        assert isinstance(value, nn.Embedding)
        self.embed_tokens = value

    def alibi_slopes(self, device: torch.device) -> torch.Tensor | None:
        if self.config.position_embedding != "alibi":
            return None
        return alibi_slopes(self.config.num_attention_heads).to(device=device, dtype=torch.float32)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache_position: torch.LongTensor | None = None,
        cache: Cache | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if kwargs.get("output_attentions"):
            raise ValueError("Baichuan2 attention runs through SDPA and cannot return attention weights")
        cache = cache if cache is not None else past_key_values
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        B, L, _ = inputs_embeds.shape
        device = inputs_embeds.device
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if checkpointing:
            if cache is not None and cache.get_seq_length() > 0:
                raise ValueError("a filled KV cache cannot be used with gradient checkpointing in training")
            use_cache, cache = False, None
        if use_cache and cache is None:
            cache = DynamicCache()
        past = cache.get_seq_length() if cache is not None else 0
        kv_len = past + L
        if position_ids is None:
            steps = cache_position if cache_position is not None else torch.arange(past, kv_len, device=device)
            positions: torch.Tensor = steps.to(device)[None].expand(B, L)
        else:
            positions = position_ids
        attention_mask = model_attention_mask(self, attention_mask, device)
        slopes = self.alibi_slopes(device)
        packed_slopes = None
        if isinstance(attention_mask, PackedAttention):
            if past or attention_mask.shape[-2:] != (L, L) or attention_mask.shape[0] != B:
                raise ValueError(
                    f"a packed attention mask of shape {attention_mask.shape} needs {B} rows of {L} tokens, no cache"
                )
            attn_mask: torch.Tensor | PackedAttention | None = attention_mask
            packed_slopes = slopes
        else:
            attn_mask = build_attention_bias(attention_mask, L, kv_len, inputs_embeds.dtype, device, slopes)
        rope_cos = rope_sin = None
        if self.config.position_embedding == "rope":
            rope_cos, rope_sin = rope_cos_sin(positions.to(device), self.config.head_dim, self.config.rope_theta)
        output_hidden_states = bool(
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        hidden_states, all_hidden = inputs_embeds, []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states = layer(hidden_states, attn_mask, rope_cos, rope_sin, cache=cache, alibi_slopes=packed_slopes)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        hidden = tuple(all_hidden) if output_hidden_states else None
        out_cache = cache if use_cache else None
        if return_dict is False or (return_dict is None and getattr(self.config, "return_dict", True) is False):
            return tuple(t for t in (hidden_states, out_cache, hidden) if t is not None)
        cache_field: dict[str, Any] = {_CACHE_FIELD: out_cache}
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, hidden_states=hidden, **cache_field)


class Baichuan2ForCausalLM(Baichuan2PreTrainedModel, GenerationMixin):
    """Decoder + NormHead; ``labels`` give the mean shifted cross-entropy (``-100`` ignored)."""

    def __init__(self, config: Baichuan2Config) -> None:
        super().__init__(config)
        self.model = Baichuan2Model(config)
        self.lm_head = NormHead(config.hidden_size, config.vocab_size, config.initializer_range)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> NormHead:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: NormHead) -> None:
        self.lm_head = new_embeddings

    def get_decoder(self) -> Baichuan2Model:
        return self.model

    def set_decoder(self, decoder: Baichuan2Model) -> None:
        self.model = decoder

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache_position: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        cache: Cache | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast | tuple:
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            cache_position=cache_position,
            **kwargs,
        )
        hidden_states = out.last_hidden_state
        if isinstance(logits_to_keep, int):
            kept = hidden_states[:, -logits_to_keep:] if logits_to_keep > 0 else hidden_states
        else:
            kept = hidden_states[:, logits_to_keep]
        logits = self.lm_head(kept)
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels, num_items_in_batch)
        out_cache = getattr(out, _CACHE_FIELD)
        if return_dict is False or (return_dict is None and getattr(self.config, "return_dict", True) is False):
            return tuple(t for t in (loss, logits, out_cache, out.hidden_states) if t is not None)
        cache_field: dict[str, Any] = {_CACHE_FIELD: out_cache}
        return CausalLMOutputWithPast(loss=loss, logits=logits, hidden_states=out.hidden_states, **cache_field)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
    """Next-token cross-entropy in fp32: position t predicts ``labels[t + 1]``; mean over non-ignored targets
    (or sum / ``num_items_in_batch`` when the trainer passes the global count)."""
    shift_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].to(logits.device).reshape(-1)
    if num_items_in_batch is None:
        return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX)
    total = F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
