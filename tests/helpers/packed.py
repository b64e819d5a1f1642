"""The packing oracle: the worst difference between a packed batch's logits and each document's logits alone."""

import torch

from pedgpt.models.attention import model_attention_mask


def worst_packed_vs_alone(model, rows, batch) -> float:
    """Max |packed − alone| over every document of ``rows`` (collated into ``batch`` by ``collate_packed``); the
    packed mask goes through the model's attention path (:func:`model_attention_mask`)."""
    with torch.no_grad():
        mask = model_attention_mask(model, batch["attention_mask"])
        packed = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=batch["position_ids"]).logits
        worst = 0.0
        for b, row in enumerate(rows):
            start = 0
            for example in row:
                n = len(example["input_ids"])
                alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
                worst = max(worst, (packed[b, start : start + n] - alone).abs().max().item())
                start += n
    return worst
