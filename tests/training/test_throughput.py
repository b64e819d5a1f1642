import pytest

from pedgpt.models.flops import flops_per_token
from pedgpt.training.callbacks import peak_flops


def test_flops_per_token_formula_by_hand():
    # 6·N + 12·L·h·s with N = 1e6, L = 2, h = 64, s = 128
    assert flops_per_token(1_000_000, 2, 64, 128) == 6_000_000 + 12 * 2 * 64 * 128


def test_peak_flops_lookup():
    assert peak_flops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert peak_flops("NVIDIA A100-SXM4-80GB") == pytest.approx(312e12)
    assert peak_flops("Some CPU") is None
