"""A conversation with a trained export: generation settings from a preset, the routing task, the model a tool
talks to, and the history trimmed to the model's context. Shared by ``pedgpt.chat`` and ``pedgpt.serve``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pedgpt.adapters import adapter_modules
from pedgpt.common.errors import UsageError
from pedgpt.config.cli import ToolParser
from pedgpt.data.schema import TASKS, Message
from pedgpt.inference.generation import PRESETS, GenerationSettings
from pedgpt.models.exports import LoadedModel, newest_run_export

#: the sampling settings a tool may override on top of a preset
SETTING_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "seed", "repetition_penalty")
DEFAULT_TASK = "consult"


def settings_from(preset: str, **changes: Any) -> GenerationSettings:
    """A preset with any of :data:`SETTING_KEYS` overridden (None values are ignored); temperature 0 = greedy."""
    if preset not in PRESETS:
        raise UsageError(f"preset={preset!r}: known presets: {', '.join(PRESETS)}")
    changes = {k: v for k, v in changes.items() if k in SETTING_KEYS and v is not None}
    if "temperature" in changes:  # 0 means greedy, as in the OpenAI API
        changes["do_sample"] = changes["temperature"] > 0
        if not changes["do_sample"]:
            del changes["temperature"]
    return replace(PRESETS[preset], **changes)


def check_task(task: str | None) -> str | None:
    if task is not None and task not in TASKS:
        raise UsageError(f"task={task!r}: known tasks: {', '.join(TASKS)}")
    return task


def task_or_default(loaded: LoadedModel, task: str | None) -> str | None:
    """``task``, or ``consult`` when the adapter's router cannot run without a task id."""
    needs = any(m.router is not None and m.router.needs_task_ids(False) for _, m in adapter_modules(loaded.model))
    return task if task is not None or not needs else DEFAULT_TASK


def resolve_model(
    model: str | None, adapter: str | None, output_root: str, say: Callable[[str], None]
) -> tuple[str, str | None]:
    """(model_dir, adapter_dir): ``model`` / ``adapter``, else the newest finished run's final export."""
    if model:
        return model, adapter
    found = newest_run_export(output_root)
    if found is None:
        raise UsageError(
            f"no model= given and no finished pipeline run under {output_root}/: train one with "
            f"`python -m pedgpt.train` or pass model=DIR"
        )
    say(f"model= not given; using the newest run's export: {found}")
    return found, adapter


def add_model_options(p: ToolParser, default_preset: str) -> None:
    """The options chat and serve share: which export, which task, which sampling settings."""
    p.option("model", help="an export directory (default: the newest finished run under output_root)")
    p.option("adapter", help="an adapter export to put on `model`")
    p.option("task", choices=TASKS, help="routing task for a task-aware MoE-LoRA adapter")
    p.option("preset", choices=tuple(PRESETS), default=default_preset)
    p.option("device", default="cpu")
    p.option("output_root", default="outputs")
    p.option("max_new_tokens", type=int)
    p.option("temperature", type=float, help="0 = greedy")
    p.option("top_p", type=float)
    p.option("top_k", type=int)
    p.option("seed", type=int)
    p.option("repetition_penalty", type=float)


# -- context -----------------------------------------------------------------------------------------
def context_length(loaded: LoadedModel) -> int:
    """Tokens the model can attend to: its position limit, or the tokenizer's if that is smaller."""
    cfg = loaded.model.config
    limits = [
        getattr(cfg, k)
        for k in ("max_position_embeddings", "n_positions", "seq_length", "model_max_length")
        if isinstance(getattr(cfg, k, None), int)
    ]
    tok_max = getattr(loaded.tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and tok_max < 10**7:
        limits.append(tok_max)
    if not limits:
        raise ValueError(f"{loaded.model_dir}: config has no max_position_embeddings; cannot size the context")
    return min(limits)


def prompt_tokens(loaded: LoadedModel, messages: list[Message], system: str | None) -> int:
    enc = loaded.template.encode(loaded.tokenizer, messages, system, add_generation_prompt=True)
    return len(enc["input_ids"])


def trim_history(
    loaded: LoadedModel, messages: list[Message], system: str | None, max_new_tokens: int
) -> tuple[list[Message], int]:
    """Drop the fewest oldest turns for the prompt plus ``max_new_tokens`` to fit the context (a binary search:
    O(log n) encodings of the conversation, not one per dropped pair).

    ``messages`` alternate user/assistant and end with a user turn. Returns (kept messages, number dropped);
    raises ``ValueError`` when even the last user message alone does not fit.
    """
    budget = context_length(loaded) - max_new_tokens

    def fits(pairs_dropped: int) -> bool:  # dropping the oldest user turn and its answer, pair by pair
        return prompt_tokens(loaded, messages[2 * pairs_dropped :], system) <= budget

    last = (len(messages) - 1) // 2  # keep at least the final user message
    if not fits(last):
        raise ValueError(
            f"the message needs {prompt_tokens(loaded, messages[2 * last :], system)} prompt tokens; the "
            f"context holds {context_length(loaded)} including {max_new_tokens} new tokens"
        )
    lo, hi = 0, last  # the fewest pairs to drop: a binary search (the prompt shrinks as pairs go)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return list(messages[2 * lo :]), 2 * lo
