"""pedgpt.inference.safety: red-flag triage on the team-written case lists, the parsers, and the conversation rules."""

from __future__ import annotations

import pytest

from helpers import TESTS
from pedgpt.data.schema import Message
from pedgpt.inference.safety import RED_FLAGS, Triage, triage
from pedgpt.inference.safety.parse import (
    is_history,
    is_hypothetical,
    is_negated,
    no_urine_hours,
    parse_ages,
    parse_durations,
    parse_number,
    parse_temperatures,
    youngest_age_months,
)
from pedgpt.inference.safety.red_flags import EMERGENCY_NUMBER, POISON_LINE

CASES = TESTS / "safety_cases"


def _load(name: str) -> list[str]:
    lines = (CASES / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


#: The lists the rules were written against (tuning), and the held-out set they never were (see the README).
URGENT = _load("urgent.txt") + _load("urgent_colloquial.txt")
BENIGN = _load("benign.txt") + _load("benign_colloquial.txt")
URGENT_HELD_OUT = _load("urgent_heldout.txt")
BENIGN_HELD_OUT = _load("benign_heldout.txt")


def _rates(urgent: list[str], benign: list[str]) -> tuple[float, float, list[str], list[tuple[str, list[str]]]]:
    missed = [t for t in urgent if not triage(t).urgent]
    flagged = [(t, triage(t).reasons) for t in benign if triage(t).urgent]
    return 1 - len(missed) / len(urgent), len(flagged) / len(benign), missed, flagged


# --- the case lists -----------------------------------------------------------------------------------
def test_case_lists_are_large_and_disjoint():
    assert len(URGENT) >= 80 and len(BENIGN) >= 80
    assert len(URGENT_HELD_OUT) >= 100 and len(BENIGN_HELD_OUT) >= 100
    everything = [URGENT, BENIGN, URGENT_HELD_OUT, BENIGN_HELD_OUT]
    for i, a in enumerate(everything):
        for b in everything[i + 1 :]:
            assert not set(a) & set(b), sorted(set(a) & set(b))[:3]


def test_recall_and_false_positive_rate_on_the_case_lists():
    recall, fpr, missed, flagged = _rates(URGENT, BENIGN)
    print(
        f"\ntriage recall {recall:.3f} on {len(URGENT)} urgent, false-positive rate {fpr:.3f} on {len(BENIGN)} benign"
    )
    assert recall >= 0.95, f"missed: {missed}"
    assert fpr <= 0.05, f"false positives: {flagged}"


def test_recall_and_false_positive_rate_on_the_held_out_set():
    """Messages the rules were never tuned on (held-out set 4, scored once when it was written). A failure here
    means the rules stopped generalising; fix the rules from the tuned lists, not from these lines."""
    recall, fpr, missed, flagged = _rates(URGENT_HELD_OUT, BENIGN_HELD_OUT)
    print(
        f"\nheld out: recall {recall:.3f} on {len(URGENT_HELD_OUT)} urgent, "
        f"false-positive rate {fpr:.3f} on {len(BENIGN_HELD_OUT)} benign"
    )
    assert recall >= 0.95, f"held-out recall {recall:.3f}: {len(missed)} missed"
    assert fpr <= 0.05, f"held-out false-positive rate {fpr:.3f}: {len(flagged)} flagged"


# --- parsers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,value",
    [
        ("38.5", 38.5),
        ("三十九", 39.0),
        ("三十八点五", 38.5),
        ("两", 2.0),
        ("十一", 11.0),
        ("一百", 100.0),
        ("七八", 8.0),
        ("abc", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text,months",
    [
        ("8个月宝宝发烧", 8.0),
        ("两岁半", 30.0),
        ("孩子3岁2个月", 38.0),
        ("出生20天", 0.66),
        ("新生儿", 0.5),
        ("1周岁", 12.0),
        ("宝贝半岁", 6.0),
        ("一岁零三个月", 15.0),
        ("宝宝2个月大", 2.0),
        ("十一个月宝宝", 11.0),
        ("10周大的宝宝", 2.3),
        ("我家小宝宝两个半月", 2.5),
        ("宝宝42天，吐奶", 1.38),
        ("娃才五十天", 1.64),
        ("男，2个月，发烧", 2.0),
        ("刚满月的宝宝", 1.0),
        ("4个多月的宝宝", 4.0),
        ("3月龄", 3.0),
        ("宝宝生下来第9天", 0.3),
        ("出生第十八天", 0.59),
        ("出生不到24小时", 0.03),
        ("生下来当天", 0.02),
        ("宝宝才生了11天", 0.36),
        ("宝宝一个来月", 1.0),
        ("宝宝二十几天", 0.66),
        ("十来天的宝宝", 0.33),
        ("我们家小宝两个月不到", 2.0),
        ("宝宝不到三个月", 3.0),
        ("刚满百天的宝宝", 3.3),
    ],
)
def test_parse_age_in_months(text, months):
    assert youngest_age_months(text) == pytest.approx(months, abs=0.01)


@pytest.mark.parametrize(
    "text", ["咳嗽3个月了", "宝宝发烧3天", "宝宝两个月前打了疫苗", "宝宝3天没拉大便", "3个月以下的宝宝", "三天了"]
)
def test_durations_and_time_points_are_not_ages(text):
    assert parse_ages(text) == []


@pytest.mark.parametrize(
    "text,temps",
    [
        ("38.5度", [38.5]),
        ("39℃", [39.0]),
        ("三十九度五", [39.5]),
        ("烧到40", [40.0]),
        ("38度8", [38.8]),
        ("烧到四十度", [40.0]),
        ("39度多", [39.0]),
        ("额温枪测的38.4", [38.4]),
        ("体温37.9到38.3", [37.9, 38.3]),
        ("发烧，40.5", [40.5]),
        ("用40度的水洗澡", []),
        ("体重12.5公斤", []),
    ],
)
def test_parse_temperatures(text, temps):
    assert [t.value for t in parse_temperatures(text)] == temps


@pytest.mark.parametrize(
    "text,days",
    [
        ("发烧5天", [5.0]),
        ("三天了", [3.0]),
        ("一个礼拜", [7.0]),
        ("48小时", [2.0]),
        ("发烧第六天", [6.0]),
        ("七八天", [8.0]),
        ("一周", [7.0]),
        ("烧了一个多月", [30.0]),
    ],
)
def test_parse_durations(text, days):
    assert [d.value for d in parse_durations(text)] == days


@pytest.mark.parametrize(
    "text,hours",
    [
        ("十个小时没尿", [10.0]),
        ("一天没小便", [24.0]),
        ("没尿已经9个小时", [9.0]),
        ("8小时尿不湿都是干的", [8.0]),
        ("尿不湿一整天都是干的", [24.0]),
        ("尿量正常", []),
        ("尿布十个小时都是干的", [10.0]),
        ("已经十多个小时没小便了", [10.0]),
        ("从早上到现在没怎么尿", [8.0]),
    ],
)
def test_no_urine_hours(text, hours):
    assert [h.value for h in no_urine_hours(text)] == hours


@pytest.mark.parametrize(
    "prefix,negated",
    [
        ("没有", True),
        ("孩子也没", True),
        ("不", True),
        ("没有发烧和", True),
        ("体温没有超过", True),
        ("有没有", False),
        ("不知道有没有", False),
        ("不停", False),
        ("无热", False),
        ("宝宝不吃奶", False),
        ("特别", False),
    ],
)
def test_negation_scope(prefix, negated):
    assert is_negated(prefix) is negated


def test_hypothetical_and_history_clauses():
    assert is_hypothetical("如果抽搐怎么办") and is_hypothetical("热性惊厥会影响智力吗")
    assert not is_hypothetical("孩子抽搐了怎么办")
    assert is_history("上次抽过一次") and is_history("去年得过肺炎") and is_history("孩子以前抽过")
    assert not is_history("上周开始发烧到现在一直没退")


# --- negation, history and urgent phrasings that contain a negation -----------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "上周发烧，现在好了",
        "没有抽搐",
        "孩子不抽了",
        "未见皮疹，没有发烧",
        "无呼吸困难",
        "已经退烧了，之前最高40度",
        "以前抽过一次，现在没事",
        "上次抽过一次，现在很好",
        "孩子没有吞电池",
    ],
)
def test_negation_and_history_do_not_trigger(text):
    assert not triage(text).urgent, triage(text).reasons


@pytest.mark.parametrize(
    "text,category",
    [
        ("宝宝叫不醒", "unresponsive"),
        ("孩子没有呼吸了", "breathing"),
        ("宝宝不会动了", "unresponsive"),
        ("孩子喘不上气", "breathing"),
        ("鼻血止不住", "bleeding"),
        ("叫他没反应", "unresponsive"),
        ("宝宝没反应", "unresponsive"),
    ],
)
def test_urgent_phrasings_containing_negation_trigger(text, category):
    result = triage(text)
    assert result.urgent and category in result.categories


# --- conversations ------------------------------------------------------------------------------------
def test_age_two_turns_earlier_counts():
    conversation = [
        {"role": "user", "content": "宝宝2个月大"},
        {"role": "assistant", "content": "好的，请问宝宝现在有什么不舒服？"},
        {"role": "user", "content": "发烧38.2度"},
    ]
    result = triage(conversation)
    assert result.urgent and result.category == "infant_fever"
    assert not triage(conversation[2:]).urgent  # without the age, 38.2 °C alone is not a red flag


def test_schema_messages_and_only_user_turns_are_read():
    conversation = [
        Message("system", "你是儿科助手"),
        Message("user", "孩子两岁，有点流鼻涕"),
        Message("assistant", "如果出现抽搐、呼吸困难请立即就医"),
        Message("user", "好的谢谢"),
    ]
    assert not triage(conversation).urgent
    assert triage(conversation + [Message("user", "他刚才突然抽搐了")]).urgent


def test_bad_input_is_a_clear_error():
    with pytest.raises(TypeError, match="role"):
        triage([{"content": "孩子发烧"}])
    with pytest.raises(TypeError, match="string or a list"):
        triage(42)


# --- categories and messages --------------------------------------------------------------------------
def test_every_category_triggers_on_the_urgent_list():
    seen = {c for text in URGENT for c in triage(text).categories}
    missing = {f.id for f in RED_FLAGS} - seen
    assert not missing, f"categories never triggered: {sorted(missing)}"


def test_urgent_message_says_call_120_and_why():
    result = triage("孩子突然抽搐，嘴唇发紫")
    assert isinstance(result, Triage) and result.urgent
    assert EMERGENCY_NUMBER in result.message and "抽搐" in result.message
    assert result.reasons[0].split(":")[0] == result.category
    assert triage("宝宝在玩积木").message == ""


@pytest.mark.parametrize("text", ["两岁的儿子吞了一颗纽扣电池", "孩子误喝了消毒液", "孩子把奶奶的降压药吃了"])
def test_ingestion_message_gives_the_poison_line(text):
    result = triage(text)
    assert result.category == "poisoning"
    assert POISON_LINE in result.message and EMERGENCY_NUMBER in result.message


def test_self_harm_message_gives_crisis_support():
    result = triage("孩子说不想活了")
    assert result.category == "self_harm" and "12356" in result.message and EMERGENCY_NUMBER in result.message
