"""Rules as data: what each kind of rule accepts, and the one line it words for a value it refuses."""

import pytest
from omegaconf import OmegaConf

from pedgpt.common.errors import ConfigError
from pedgpt.config.ranges import Rule, at_least, batches_or_fraction, check_rules, one_of, positive


@pytest.mark.parametrize(
    "rule,good,bad,words",
    [
        (at_least("n", 1), [1, 7], [0, -1, 1.5, True, "3", None], "a whole number >= 1"),
        (positive("lr"), [1e-9, 3.0], [0, -1e-4, float("nan"), None], "a number > 0"),
        (Rule("p", low=0, high=1, high_open=True), [0, 0.5], [1, 1.0, -0.01], "a number in [0, 1)"),
        (Rule("p", low=0, high=0.5, low_open=True), [0.5, 0.1], [0, 0.6], "a number in (0, 0.5]"),
        (at_least("k", 1, nullable=True), [None, 2], [0], "a whole number >= 1 (or null)"),
        (one_of("m", ("a", "b")), ["a", "b"], ["c", None, 1], "'a' or 'b'"),
        (one_of("m", ("a", "b", "c")), ["c"], ["d"], "one of 'a', 'b' or 'c'"),
        (
            Rule("betas", low=0, high=1, high_open=True, length=2, nullable=True),
            [[0.9, 0.95], None, (0.0, 0.5)],
            [[0.9], [0.9, 1.0], [0.9, 0.95, 0.99], 0.9],
            "a list of 2 values, each a number in [0, 1) (or null)",
        ),
    ],
)
def test_a_rule_accepts_its_range_and_words_it(rule, good, bad, words):
    assert all(rule.accepts(v) for v in good)
    assert not any(rule.accepts(v) for v in bad)
    assert rule.allowed() == words


def test_batches_or_fraction_follows_lightning():
    assert [batches_or_fraction(v) for v in (1, 40, 0.25, 1.0)] == [True] * 4
    assert [batches_or_fraction(v) for v in (0, -2, 0.0, 1.5, True)] == [False] * 5


def test_check_rules_names_the_full_key_the_range_and_the_value():
    node = OmegaConf.create({"optimizer": {"lr": -0.001, "betas": [0.9, 0.95]}, "warmup_steps": 5})
    rules = (at_least("warmup_steps", 0), positive("optimizer.lr", hint="a learning rate"))
    with pytest.raises(ConfigError, match=r"^sft\.optimizer\.lr: must be a number > 0, got -0\.001; a learning rate$"):
        check_rules(node, rules, "sft.")
    check_rules(node, rules[:1], "sft.")  # the rules that hold raise nothing
