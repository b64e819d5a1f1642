"""Training stages: a registry (:mod:`pedgpt.stages.registry`) and one file per stage.

Importing this package registers the built-in stages (CPT, SFT, DFPO, MoE-LoRA and the equal-size LoRA
baseline) and their config schemas.
"""

from pedgpt.stages import cpt, dfpo, lora_baseline, mole, sft  # noqa: F401  (registration)
from pedgpt.stages.registry import Stage, StageConfig, StageData, get_stage, register_stage, stage_names

__all__ = ["Stage", "StageConfig", "StageData", "get_stage", "register_stage", "stage_names"]
