"""Constants defined once for the whole package."""

from __future__ import annotations

import torch

#: label value of positions that take no loss (the convention of torch's cross-entropy and of transformers)
IGNORE_INDEX = -100

#: dtype names accepted in configs (``model.dtype``, ``trainer.fsdp.param_dtype``, ``evaluate dtype=``)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
