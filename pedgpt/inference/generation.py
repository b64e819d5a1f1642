"""Text generation for evaluation, chat and serving: batched (``generate_batch``) and streamed (``stream_generate``).

Both run one manual decoding loop (:func:`_token_steps`) over a KV cache, rather than ``model.generate``:

* streaming needs a generator that yields between decoding steps without a helper thread, so that a client
  disconnect (``should_stop()``) ends the loop at the next step; ``model.generate`` only offers a
  threaded streamer;
* per-row sampling generators (row ``i`` seeded with ``seed + i``) make a sampled answer independent of
  which other prompts share its batch — ``model.generate`` draws from one RNG for the whole batch;
* the same loop then gives batched and one-by-one decoding the same semantics by construction.

The library still does what it already does well: the model's forward and cache (``DynamicCache``), the
causal/padding masks, and the sampling warpers (temperature, top-k, top-p, repetition penalty).

Batches are left-padded (position ids count real tokens only, so a padded row sees the same positions as
alone) and sorted by prompt length; results come back in input order. A row stops at an eos id (the
tokenizer's and the generation config's) or when its text contains one of the template's stop strings; the
answer is cut before the first stop string and stripped of surrounding whitespace. In fp32, greedy batched
output equals one-by-one output.

Task-aware MoE-LoRA adapters get the batch's task ids (``set_task_ids``) before the first forward and have
them cleared afterwards. When ``torch.distributed`` runs several processes (FSDP), every rank keeps
stepping until all ranks' rows have finished, so the sharded forwards stay in step (each rank must call
with the same number of batches).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import DynamicCache

from pedgpt.adapters import adapter_modules, clear_task_ids, set_task_ids
from pedgpt.data.schema import Message, task_id


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"generation.max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"generation.temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"generation.top_p must lie in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.repetition_penalty <= 0:
            raise ValueError(
                f"generation.top_k must be ≥ 0 and repetition_penalty > 0, "
                f"got {self.top_k} and {self.repetition_penalty}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``greedy``: deterministic decoding; ``paper``: the PediatricsGPT code's sampling defaults.
PRESETS: dict[str, GenerationSettings] = {
    "greedy": GenerationSettings(),
    "paper": GenerationSettings(max_new_tokens=512, do_sample=True, temperature=0.95, top_p=0.7, top_k=50),
}


# --- prompts and text --------------------------------------------------------------------------------
def encode_prompt(
    loaded: Any, messages: Sequence[Message], system: str | None = None, max_prompt_len: int | None = None
) -> list[int]:
    """Prompt ids (ending with the assistant prefix), left-truncated to ``max_prompt_len``.

    Raises ``ValueError`` when even the final user turn does not fit.
    """
    enc = loaded.template.encode(
        loaded.tokenizer, list(messages), system, max_len=max_prompt_len, add_generation_prompt=True
    )
    if enc is None:
        raise ValueError(f"the final user turn does not fit in max_prompt_len={max_prompt_len} tokens")
    return enc["input_ids"]


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string, and whether one occurred."""
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def stop_prefix_len(text: str, stop_strings: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a stop string (held back in streams)."""
    best = 0
    for s in stop_strings:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def final_text(tokenizer: Any, ids: Sequence[int], stop_strings: Sequence[str]) -> str:
    """The answer of generated ids: decoded, cut before the first stop string, whitespace-stripped."""
    return cut_at_stop(_decode(tokenizer, ids), stop_strings)[0].strip()


class TextStream:
    """Turns generated token ids, pushed one by one, into text deltas that are always safe to show.

    A delta never ends inside a multi-byte character (trailing U+FFFD from incomplete bytes is held back),
    never contains a stop string or the start of one, and never has trailing whitespace; the concatenated
    deltas plus :meth:`finish` equal :func:`final_text` of all ids.
    """

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.ids: list[int] = []
        self.emitted = ""
        self.stopped = False

    def _delta(self, visible: str) -> str:
        if not visible.startswith(self.emitted):  # cannot happen for prefix-stable decoders; fail loudly
            raise RuntimeError(f"streamed text diverged: {self.emitted!r} is not a prefix of {visible!r}")
        delta, self.emitted = visible[len(self.emitted) :], visible
        return delta

    def push(self, token: int) -> str:
        """Add one token; returns the new safe text (possibly ""). Sets ``stopped`` at a stop string."""
        self.ids.append(int(token))
        text, self.stopped = cut_at_stop(_decode(self.tokenizer, self.ids), self.stop_strings)
        if self.stopped:
            return self._delta(text.strip())
        safe = text.rstrip("\ufffd")
        safe = safe[: len(safe) - stop_prefix_len(safe, self.stop_strings)]
        return self._delta(safe.strip())

    def finish(self) -> str:
        """The rest of the answer once generation has ended."""
        return self._delta(final_text(self.tokenizer, self.ids, self.stop_strings))


# --- the decoding loop -------------------------------------------------------------------------------
def eos_ids(loaded: Any) -> set[int]:
    """The tokenizer's eos id and those of the model's generation config."""
    ids = {loaded.tokenizer.eos_token_id} if loaded.tokenizer.eos_token_id is not None else set()
    gen_cfg = getattr(loaded.model, "generation_config", None)
    extra = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    ids.update([extra] if isinstance(extra, int) else list(extra or []))
    return ids


def _pad_id(loaded: Any) -> int:
    tok = loaded.tokenizer
    return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _ranks_all_done(done: bool, device: torch.device) -> bool:
    """True when every process has finished (a plain ``done`` without a multi-process group)."""
    if not (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    ):
        return done
    flag = torch.tensor([int(done)], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())


def _cache_kwargs(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """The forward's keyword for the KV cache (``cache`` in transformers 5, else ``past_key_values``), and
    ``logits_to_keep=1`` where supported (no full-length logits for the prompt)."""
    params = inspect.signature(model.forward).parameters
    kwargs: dict[str, Any] = {"cache" if "cache" in params else "past_key_values": cache}
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = 1
    return kwargs


def _forward(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, kwargs: dict[str, Any]
) -> torch.Tensor:
    """Last-position logits (B, V) in fp32, extending the cache in ``kwargs`` in place."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs)
    return out.logits[:, -1, :].float()


class _Picker:
    """Chooses the next token of every row: argmax, or a draw from the row's own seeded generator."""

    def __init__(self, settings: GenerationSettings, n_rows: int, row_offset: Sequence[int], device: torch.device):
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.settings = settings
        self.generators: list[torch.Generator] = []
        if settings.do_sample:
            base = settings.seed if settings.seed is not None else int(torch.randint(0, 2**62, ()).item())
            for i in range(n_rows):
                g = torch.Generator(device=device)
                g.manual_seed(base + int(row_offset[i]))
                self.generators.append(g)
        warpers = []
        if settings.do_sample:
            if settings.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(settings.temperature))
            if settings.top_k:
                warpers.append(TopKLogitsWarper(settings.top_k))
            if settings.top_p < 1.0:
                warpers.append(TopPLogitsWarper(settings.top_p))
        self.warpers = LogitsProcessorList(warpers)

    def __call__(self, logits: torch.Tensor, rows: Sequence[int], history: list[list[int]]) -> list[int]:
        """logits: (R, V) fp32 of the active ``rows``; history: every row's prompt + generated ids → (R,) ids."""
        if self.settings.repetition_penalty != 1.0:
            from transformers import RepetitionPenaltyLogitsProcessor

            penalty = RepetitionPenaltyLogitsProcessor(self.settings.repetition_penalty)
            logits = torch.cat(
                [
                    penalty(torch.tensor([history[r]], device=logits.device), logits[k : k + 1])
                    for k, r in enumerate(rows)
                ]
            )
        if not self.settings.do_sample:
            return logits.argmax(dim=-1).tolist()
        probs = torch.softmax(self.warpers(None, logits), dim=-1)
        return [int(torch.multinomial(probs[k], 1, generator=self.generators[r]).item()) for k, r in enumerate(rows)]


@torch.no_grad()
def _token_steps(
    loaded: Any,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings,
    done: list[bool],
    task_ids: torch.Tensor | None = None,
    row_offset: Sequence[int] | None = None,
) -> Iterator[list[int]]:
    """Yield the next token of every row, step by step, for left-padded ``prompts``.

    The consumer marks finished rows in ``done`` (same length as ``prompts``) after each yield; a finished
    row gets ``pad`` from then on and leaves the batch and its KV cache. Ends when every row (of every rank) is done or after
    ``settings.max_new_tokens`` steps.
    """
    model, pad = loaded.model, _pad_id(loaded)
    device = _device(model)
    n, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    history = [list(p) for p in prompts]
    picker = _Picker(settings, n, row_offset if row_offset is not None else range(n), device)
    has_adapters = bool(adapter_modules(model))
    active = list(range(n))  # rows still in the batch (finished rows are dropped from the cache)
    try:
        if has_adapters and task_ids is not None:
            set_task_ids(model, task_ids.to(device))
        cache = DynamicCache(config=getattr(model, "config", None))
        kwargs = _cache_kwargs(model, cache)
        logits = _forward(model, ids, mask, pos, kwargs)
        for step in range(settings.max_new_tokens):
            nxt = [pad] * n
            for r, t in zip(active, picker(logits, active, history)):
                if not done[r]:
                    nxt[r] = t
                    history[r].append(t)
            yield nxt
            if step + 1 == settings.max_new_tokens or _ranks_all_done(all(done), device):
                return
            keep = [k for k, r in enumerate(active) if not done[r]]
            if keep and len(keep) < len(active):  # all done here but not on another rank: keep stepping
                sel = torch.tensor(keep, device=device)
                cache.batch_select_indices(sel)
                mask, pos, active = mask[sel], pos[sel], [active[k] for k in keep]
                if has_adapters and task_ids is not None:
                    set_task_ids(model, task_ids.to(device)[sel])
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            pos = pos[:, -1:] + 1
            step_ids = torch.tensor([nxt[r] for r in active], device=device).unsqueeze(1)
            logits = _forward(model, step_ids, mask, pos, kwargs)
    finally:
        if has_adapters:
            clear_task_ids(model)


def _task_tensor(tasks: Sequence[str] | None, rows: Sequence[int]) -> torch.Tensor | None:
    return None if tasks is None else torch.tensor([task_id(tasks[i]) for i in rows], dtype=torch.long)


# --- public API --------------------------------------------------------------------------------------
def generate_batch(
    loaded: Any,
    conversations: Sequence[Sequence[Message]],
    settings: GenerationSettings = PRESETS["greedy"],
    *,
    systems: Sequence[str | None] | None = None,
    tasks: Sequence[str] | None = None,
    batch_size: int = 8,
    max_prompt_len: int | None = None,
) -> list[str]:
    """Answers to ``conversations`` (each ends with a user turn), in input order.

    ``loaded``: a :class:`pedgpt.models.exports.LoadedModel` (model, tokenizer, template). ``systems`` and
    ``tasks`` are per conversation; ``tasks`` routes task-aware adapters. Sampled row ``i`` (input order)
    draws from a generator seeded with ``settings.seed + i``.
    """
    n = len(conversations)
    for name, seq in (("systems", systems), ("tasks", tasks)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} conversations")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    prompts = [
        encode_prompt(loaded, conv, systems[i] if systems else None, max_prompt_len)
        for i, conv in enumerate(conversations)
    ]
    stops, eos = loaded.template.stop_strings, eos_ids(loaded)
    tail = 4 * max((len(s) for s in stops), default=0) + 4  # tokens that can hold a just-completed stop string
    order = sorted(range(n), key=lambda i: -len(prompts[i]))
    out: list[str] = [""] * n
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        done = [False] * len(rows)
        gen: list[list[int]] = [[] for _ in rows]
        for tokens in _token_steps(loaded, [prompts[i] for i in rows], settings, done, _task_tensor(tasks, rows), rows):
            for j, t in enumerate(tokens):
                if done[j]:
                    continue
                if t in eos:
                    done[j] = True
                    continue
                gen[j].append(t)
                if stops and cut_at_stop(_decode(loaded.tokenizer, gen[j][-tail:]), stops)[1]:
                    done[j] = True
        for j, i in enumerate(rows):
            out[i] = final_text(loaded.tokenizer, gen[j], stops)
    return out


def stream_generate(
    loaded: Any,
    messages: Sequence[Message],
    settings: GenerationSettings = PRESETS["greedy"],
    *,
    system: str | None = None,
    task: str | None = None,
    max_prompt_len: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yield the answer to one conversation as text deltas (see :class:`TextStream`).

    ``should_stop`` is polled before every decoding step; once it returns True the stream ends (no
    further forward pass). Without cancellation, ``"".join(deltas)`` equals ``generate_batch`` of the same
    conversation.
    """
    prompt = encode_prompt(loaded, messages, system, max_prompt_len)
    stream, eos = TextStream(loaded.tokenizer, loaded.template.stop_strings), eos_ids(loaded)
    done = [False]
    steps = _token_steps(loaded, [prompt], settings, done, _task_tensor([task], [0]) if task else None)
    try:
        while not (should_stop is not None and should_stop()):
            token = next(steps, None)
            if token is None:
                break
            if token[0] in eos:
                done[0] = True
                continue
            delta = stream.push(token[0])
            done[0] = stream.stopped
            if delta:
                yield delta
        else:
            return
        rest = stream.finish()
        if rest:
            yield rest
    finally:
        steps.close()
