"""Session fixtures for the real-model tests: tiny official-layout checkpoints and their native conversions."""

from __future__ import annotations

import pytest
import torch

BAICHUAN = ("baichuan2_7b", "baichuan2_13b")


@pytest.fixture(scope="session")
def official_dir(tmp_path_factory):
    """family -> a tiny checkpoint in the official download layout (written once per session)."""
    pytest.importorskip("sentencepiece")
    from pedgpt.models.tiny_checkpoints import write_tiny

    root, made = tmp_path_factory.mktemp("official"), {}

    def get(family: str) -> str:
        if family not in made:
            made[family] = write_tiny(family, str(root / family), seed=7)
        return made[family]

    return get


@pytest.fixture(scope="session")
def native_dir(official_dir, tmp_path_factory):
    """family -> the native conversion of ``official_dir(family)``."""
    from pedgpt.models.baichuan2.convert import official_to_native

    root, made = tmp_path_factory.mktemp("native"), {}

    def get(family: str) -> str:
        if family not in made:
            made[family] = official_to_native(official_dir(family), str(root / family))
        return made[family]

    return get


@pytest.fixture(scope="session")
def native_model(native_dir):
    """family -> the converted model loaded in fp32, eval mode (shared: do not modify)."""
    from transformers import AutoModelForCausalLM

    import pedgpt  # noqa: F401  (registers baichuan2)

    made = {}

    def get(family: str):
        if family not in made:
            made[family] = AutoModelForCausalLM.from_pretrained(native_dir(family), dtype=torch.float32).eval()
        return made[family]

    return get
