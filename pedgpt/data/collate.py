"""Padded batches: right-padded LM/SFT batches and ``[chosen; rejected]`` preference batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pedgpt.common.constants import IGNORE_INDEX


def pad_right(seqs: Sequence[Sequence[int]], value: int, length: int | None = None) -> torch.Tensor:
    L = length or max(len(s) for s in seqs)
    out = torch.full((len(seqs), L), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate_padded(examples: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Examples with ``input_ids`` / ``labels`` (and optional ``task_id``) → a right-padded batch."""
    ids = pad_right([e["input_ids"] for e in examples], pad_id)
    batch = {
        "input_ids": ids,
        "labels": pad_right([e["labels"] for e in examples], IGNORE_INDEX, ids.shape[1]),
        "attention_mask": pad_right([[1] * len(e["input_ids"]) for e in examples], 0, ids.shape[1]),
    }
    if "task_id" in examples[0]:
        batch["task_ids"] = torch.tensor([e["task_id"] for e in examples], dtype=torch.long)
    return batch


def collate_preference(examples: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pairs → one batch of 2B rows: chosen rows first, then rejected rows (one forward for both).

    Keeps ``index`` (B,) (the pair's position in its dataset, for cached reference log-probs) and,
    when present, ``ref_chosen`` / ``ref_rejected`` (B,) and ``task_ids`` (2B,).
    """
    chosen = [{"input_ids": e["chosen_ids"], "labels": e["chosen_labels"]} for e in examples]
    rejected = [{"input_ids": e["rejected_ids"], "labels": e["rejected_labels"]} for e in examples]
    batch = collate_padded(chosen + rejected, pad_id)
    batch["index"] = torch.tensor([e["index"] for e in examples], dtype=torch.long)
    if "ref_chosen" in examples[0]:
        batch["ref_chosen"] = torch.tensor([e["ref_chosen"] for e in examples], dtype=torch.float32)
        batch["ref_rejected"] = torch.tensor([e["ref_rejected"] for e in examples], dtype=torch.float32)
    if "task_id" in examples[0]:
        t = torch.tensor([e["task_id"] for e in examples], dtype=torch.long)
        batch["task_ids"] = torch.cat([t, t])
    return batch
