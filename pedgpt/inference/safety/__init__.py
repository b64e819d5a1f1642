"""Pediatric red-flag triage: run before the model so an emergency gets emergency guidance first.

>>> from pedgpt.inference.safety import triage
>>> triage("宝宝2个月大，发烧38.5度").urgent
True
"""

from pedgpt.inference.safety.red_flags import DISCLAIMER, RED_FLAGS
from pedgpt.inference.safety.triage import Triage, triage

__all__ = ["triage", "Triage", "RED_FLAGS", "DISCLAIMER"]
