"""Allowed values of numeric and named settings, as data: one :class:`Rule` per key, checked at startup.

The schemas (:mod:`pedgpt.config.schema`) fix types; the rules here fix ranges and names. :func:`check_rules`
applies a table of rules to a config node and raises :class:`~pedgpt.common.errors.ConfigError` with one line
naming the full key, the allowed range and the value it got. Tables here: :data:`STAGE_RULES` (the keys every
stage has; each stage's ``rules`` in ``pedgpt.stages`` add its own) and :data:`ADAPTER_RULES` (``adapter.*`` when
an adapter is used); the run-wide keys' table is ``pedgpt.training.settings_rules``, the evaluation's
``pedgpt.evaluation.run``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pedgpt.common.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """``key`` (dotted, relative to the node checked) must lie in ``[low, high]`` (an end is open when
    ``low_open`` / ``high_open``; ``None``: unbounded), or be one of ``choices``. ``integer``: a whole number.
    ``nullable``: null is allowed. ``length``: a list of exactly this many values, each checked. ``test`` with
    ``text``: any other condition, and how the error words it. ``hint``: appended to the error."""

    key: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    length: int | None = None
    test: Callable[[Any], bool] | None = None
    text: str = ""
    hint: str = ""

    def allowed(self) -> str:
        if self.test is not None:
            text = self.text
        elif self.choices is not None:
            *first, last = (repr(c) for c in self.choices)
            text = f"{', '.join(first)} or {last}" if first else last
            text = f"one of {text}" if len(first) > 1 else text
        else:
            text = "a whole number" if self.integer else "a number"
            if self.low is not None and self.high is not None:
                text += f" in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {_num(self.low)}"
            elif self.high is not None:
                text += f" {'<' if self.high_open else '<='} {_num(self.high)}"
        if self.length is not None:
            text = f"a list of {self.length} values, each {text}"
        return text + (" (or null)" if self.nullable else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.length is not None:
            if not isinstance(value, (list, tuple, ListConfig)) or len(value) != self.length:
                return False
            return all(self._accepts_one(v) for v in value)
        return self._accepts_one(value)

    def _accepts_one(self, value: Any) -> bool:
        if self.test is not None:
            return self.test(value)
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.integer and (isinstance(value, float) and not value.is_integer()):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))


def batches_or_fraction(value: Any) -> bool:
    """Lightning's ``limit_*_batches``: an int counts batches, a float is a fraction."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 1
    return isinstance(value, float) and 0.0 < value <= 1.0


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def at_least(key: str, low: float, **kw: Any) -> Rule:
    return Rule(key, low=low, integer=True, **kw)


def positive(key: str, **kw: Any) -> Rule:
    return Rule(key, low=0, low_open=True, **kw)


def one_of(key: str, choices: Iterable[Any], **kw: Any) -> Rule:
    return Rule(key, choices=tuple(choices), **kw)


def check_rules(node: DictConfig, rules: Iterable[Rule], prefix: str = "") -> None:
    """Raise :class:`ConfigError` ``<prefix><key>: must be <allowed>, got <value>`` for the first rule broken."""
    for rule in rules:
        value = OmegaConf.select(node, rule.key, throw_on_missing=False)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        if not rule.accepts(value):
            hint = f"; {rule.hint}" if rule.hint else ""
            raise ConfigError(f"{prefix}{rule.key}: must be {rule.allowed()}, got {value!r}{hint}")


#: keys every stage has (``<stage>.*``)
STAGE_RULES: tuple[Rule, ...] = (
    at_least("max_steps", 1, hint="the run trains by optimizer steps; there is no epoch bound"),
    at_least("batch_size", 1),
    at_least("val_batch_size", 1),
    at_least("max_len", 2),
    at_least("log_every_n_steps", 1),
    at_least("val_check_interval", 1),
    at_least("warmup_steps", 0),
    Rule("min_lr_ratio", low=0, high=1),
    at_least("loss_chunk_size", 0),
    positive("optimizer.lr"),
    Rule("optimizer.weight_decay", low=0),
    Rule("optimizer.betas", low=0, high=1, high_open=True, length=2, nullable=True),
    positive("optimizer.eps", nullable=True),
    Rule("optimizer.momentum", low=0, high=1, high_open=True, nullable=True),
)

#: ``adapter.*`` when the run uses an adapter (``adapter.name`` other than none)
ADAPTER_RULES: tuple[Rule, ...] = (
    at_least("rank", 1),
    positive("alpha"),
    at_least("num_universal", 0),
    at_least("num_specific", 1, hint="the router gates specific experts"),
    Rule("dropout", low=0, high=1, high_open=True),
    at_least("router_kwargs.top_k", 1, nullable=True),
    Rule("router_kwargs.balance_weight", low=0, nullable=True),
    Rule("router_kwargs.aux_weight", low=0, nullable=True),
)
