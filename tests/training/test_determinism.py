"""The same seed and config give the same losses on CPU, run to run; another seed gives other losses."""

from helpers.runs import loss_rows, tiny_cfg
from pedgpt.training.pipeline import run_pipeline

RUN = ["+experiment=sft_demo", "trainer.max_steps=6"]


def test_same_seed_same_losses_other_seed_other_losses(cache_dir, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run_pipeline(tiny_cfg(cache_dir, *RUN, f"seed={seed}"), str(tmp_path / name))
    a, b, c = (loss_rows(tmp_path / name / "sft") for name in "abc")
    assert [s for s, _ in a] == list(range(6))
    assert a == b  # string-equal, step for step
    assert all(x != y for (_, x), (_, y) in zip(a, c))
