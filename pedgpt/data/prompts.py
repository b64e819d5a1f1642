"""A fixed, seeded set of held-out prompts per task, for the generation scores logged while training."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from pedgpt.data.schema import PEDIATRIC_TASKS, Instruction, Message


@dataclass(frozen=True)
class SamplePrompt:
    """A conversation up to its last user turn, the answer it had (``reference``; None: unscored) and its task."""

    task: str
    messages: list[Message]
    reference: str | None = None
    system: str | None = None


def held_out_prompts(
    records: Sequence[Instruction], per_task: int, seed: int, tasks: Sequence[str] = PEDIATRIC_TASKS
) -> list[SamplePrompt]:
    """``per_task`` dev conversations of each of ``tasks`` drawn with ``seed`` (the same set every run): the prompt
    is the conversation before its final answer, the reference that answer. Tasks without dev records are absent."""
    rng = random.Random(seed)
    out: list[SamplePrompt] = []
    for task in tasks:
        pool = [r for r in records if r.task == task and r.messages and r.messages[-1].role == "assistant"]
        for r in sorted(rng.sample(pool, min(per_task, len(pool))), key=lambda r: r.id):
            out.append(SamplePrompt(task, list(r.messages[:-1]), r.messages[-1].content, r.system))
    return out
