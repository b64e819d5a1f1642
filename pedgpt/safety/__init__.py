"""Pediatric red-flag triage: run before the model so an emergency gets emergency guidance first.

>>> from pedgpt.safety import triage
>>> triage("宝宝2个月大，发烧38.5度").urgent
True
"""
from pedgpt.safety.red_flags import DISCLAIMER, RED_FLAGS
from pedgpt.safety.triage import Triage, triage

__all__ = ["triage", "Triage", "RED_FLAGS", "DISCLAIMER"]
