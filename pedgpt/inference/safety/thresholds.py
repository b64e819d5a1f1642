"""The red flags that are numbers read from the text, compared with the thresholds of :mod:`red_flags`.

Fever by age (and "fever" felt by hand with no number), low temperature, very high and prolonged fever, hours
without urine, breathing rate, the height of a fall, and jaundice by age (any in the first day; still there
after two weeks; pale stools). Each reads the cached parse of a :class:`~pedgpt.inference.safety.scope.Conversation`.
"""

from __future__ import annotations

import re

from pedgpt.inference.safety import red_flags as rf
from pedgpt.inference.safety.parse import fall_heights, no_urine_hours, respiratory_rates
from pedgpt.inference.safety.scope import CONTEXTS, Conversation

_FEVER_GONE = re.compile(
    r"(?:已经|已)(?:退烧|退热|不烧)|退烧了|退热了|不烧了|烧退了|烧(?:已经)?退(?:了|下来)|体温(?:已经)?(?:正常|降下来|恢复)|已经退了|"
    r"降下来了|好了(?![点一些很不多])|没事了|恢复正常|痊愈"
)
_LOW_GRADE = re.compile(r"低烧|低热")
_DURATION_FIRST = re.compile(r"^\s*(?:已经|都|持续|有|快|前后|一共)*\s*$")
_JAUNDICE = re.compile(rf.JAUNDICE)
_JAUNDICE_GONE = re.compile(r"退了|在退|慢慢退|消退|褪了|退得差不多|不黄了|没那么黄|变淡|淡了|好多了|退掉了|早退了")
_HEAVY_JAUNDICE = re.compile(rf.HEAVY_JAUNDICE)
_PALE_STOOL = re.compile(rf.PALE_STOOL)


def _fevers(conv: Conversation, found: dict[str, str]) -> None:
    temps = conv.temperatures()
    fever_words = conv.all(CONTEXTS["fever"])
    age = conv.youngest_age()
    if age is not None:
        for below, at_least in rf.INFANT_FEVER_BANDS:
            hot = [t for t in temps if t.value >= at_least]
            if age < below and hot:
                found["infant_fever"] = f"{age:g}个月, {hot[0].value:g}℃"
                break
        unmeasured = [m for m in fever_words if not _LOW_GRADE.match(m.group(0))] if not temps else []
        if "infant_fever" not in found and age < rf.INFANT_FEVER_BANDS[0][0] and unmeasured:
            found["infant_fever"] = f"{age:g}个月, {unmeasured[0].group(0)}"
    for below, at_most in rf.LOW_TEMPERATURE_BANDS:
        cold = [t for t in temps if t.value <= at_most]
        if cold and (below == float("inf") or (age is not None and age < below)):
            found["low_temperature"] = conv.text[cold[0].start : cold[0].end]
            break
    current = [t for t in temps if not conv.later_clause_matches(t.start, _FEVER_GONE)]
    high = [t for t in current if t.value >= rf.HIGH_FEVER_C]
    if high:
        found["high_fever"] = conv.text[high[0].start : high[0].end]
    for m in fever_words:
        if conv.later_clause_matches(m.start(), _FEVER_GONE):
            continue
        i = conv.index(m.start())
        days = [d.value for d in conv.durations_in(i)]
        if i + 1 < len(conv.parts):  # "发烧，已经5天了": the duration leads the next clause
            c, lead = conv.parts[i + 1], conv.durations_in(i + 1)
            if lead and _DURATION_FIRST.match(c.text[: lead[0].start]):
                days.append(lead[0].value)
        if days and max(days) >= rf.PROLONGED_FEVER_DAYS:
            found["prolonged_fever"] = conv.parts[i].text.strip()
            break


def _jaundice(conv: Conversation, found: dict[str, str]) -> None:
    """Jaundice in the first day of life; jaundice still there at two weeks or more; pale stools with jaundice or
    in a young infant; heavy jaundice (whole body, 很黄) in the first month."""
    age = conv.youngest_age()
    if age is None or age >= rf.YOUNG_INFANT_MONTHS or conv.context("assessed"):
        return
    days = age * 30.4
    yellow = [m for m in conv.all(_JAUNDICE) if not conv.later_clause_matches(m.start(), _JAUNDICE_GONE)]
    yellow = [m for m in yellow if not conv.clause_has(_JAUNDICE_GONE, m.start())]
    pale = conv.all(_PALE_STOOL)
    # ages are read to 0.01 month; half a day of slack keeps "第14天" at 14 days
    if yellow and days < rf.EARLY_JAUNDICE_DAYS:
        found["severe_jaundice"] = f"出生{days:.0f}天, {yellow[0].group(0)}"
    elif yellow and days + 0.5 >= rf.PROLONGED_JAUNDICE_DAYS:
        found["severe_jaundice"] = f"出生{days:.0f}天, {yellow[0].group(0)}"
    elif pale:
        found["severe_jaundice"] = pale[0].group(0)
    elif yellow and days <= 31:
        heavy = conv.all(_HEAVY_JAUNDICE)
        if heavy:
            found["severe_jaundice"] = heavy[0].group(0)


def threshold_flags(conv: Conversation) -> dict[str, str]:
    """``{flag id: the text that tripped it}`` for the numeric red flags that hold in ``conv``."""
    found: dict[str, str] = {}
    _fevers(conv, found)
    dry = [h for h in no_urine_hours(conv.text) if h.value >= rf.NO_URINE_HOURS and conv.holds(h.start, h.end)]
    if dry:
        found["dehydration"] = conv.text[dry[0].start : dry[0].end]
    fast = [
        r for r in respiratory_rates(conv.text) if r.value >= rf.FAST_BREATHING_PER_MIN and conv.holds(r.start, r.end)
    ]
    if fast:
        found["breathing"] = conv.text[fast[0].start : fast[0].end]
    age = conv.youngest_age()
    limit = rf.FALL_HEIGHT_INFANT_M if age is None or age < 12 else rf.FALL_HEIGHT_M
    high = [h for h in fall_heights(conv.text) if h.value >= limit and conv.holds(h.start, h.end)]
    if high:
        found["major_trauma"] = conv.text[high[0].start : high[0].end]
    _jaundice(conv, found)
    return found
