"""pedgpt: PediatricsGPT on PyTorch Lightning + Hydra.

Importing the package registers pedgpt's native Baichuan2 (``model_type="baichuan2"``) with the transformers Auto
classes, so native checkpoints load with ``AutoModelForCausalLM`` and no remote code.
"""

from pedgpt.models.baichuan2 import register as _register_baichuan2

_register_baichuan2()
