"""How parents talk, rule by rule: the new parsers (breathing rate, fall height), jaundice by age, fever felt by
hand, the WHO / NICE danger signs in colloquial words, and the scope rules that keep shared vocabulary benign.

Every expectation here is written by hand from the clinical rule it checks (NICE / WHO thresholds in
``red_flags.py``), never copied from the code's output.
"""

from __future__ import annotations

import pytest

from pedgpt.inference.safety import triage
from pedgpt.inference.safety.parse import fall_heights, is_hypothetical, respiratory_rates


@pytest.mark.parametrize(
    "text,rates",
    [
        ("宝宝喘得很厉害，一分钟呼吸七十多次", [70.0]),
        ("孩子呼吸特别快，数了一下一分钟六十多下", [60.0]),
        ("每分钟呼吸40次", [40.0]),
        ("心跳一分钟160下，呼吸也快", []),  # a heart rate is not a breathing rate
        ("一分钟跳绳100下", []),  # nothing about breathing
    ],
)
def test_respiratory_rates(text, rates):
    assert [r.value for r in respiratory_rates(text)] == rates


@pytest.mark.parametrize(
    "text,heights",
    [
        ("宝宝从1米多高的柜子上摔下来了", [1.0]),
        ("孩子从树上掉下来了，大概三米", [3.0]),
        ("从两米高的地方掉下来", [2.0]),
        ("孩子身高1米2，摔了一跤", []),  # the child's own height
        ("孩子从床上掉下来，一米不到", []),  # under a metre
        ("家里的桌子一米高", []),  # no fall
    ],
)
def test_fall_heights(text, heights):
    assert [h.value for h in fall_heights(text)] == heights


# --- thresholds from the clinical rules ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text,urgent",
    [
        ("宝宝喘得厉害，一分钟呼吸六十五次", True),  # NICE red: RR > 60
        ("宝宝睡着了呼吸一分钟四十下，很平稳", False),
        ("宝宝从1米多高的柜子上摔下来了", True),  # infant / unknown age: > 1 m
        ("五岁孩子从一米半高的台子上跳下来", False),  # older child: the 2 m line
        ("孩子从高低床上掉下来，两米多高", True),
    ],
)
def test_breathing_rate_and_fall_height_thresholds(text, urgent):
    assert triage(text).urgent is urgent, triage(text).reasons


@pytest.mark.parametrize(
    "text,urgent",
    [
        ("宝宝生下来第一天脸就黄了", True),  # any jaundice in the first 24 h
        ("出生不到24小时就发黄", True),
        ("宝宝生下来第4天，脸有点黄，吃奶好", False),  # physiological
        ("宝宝出生第三天，已经黄到肚子和腿了，很黄", True),  # heavy and spreading
        ("宝宝满月了还黄得厉害", True),  # still jaundiced at >= 14 days
        ("宝宝生下来第14天，身上还是黄黄的", True),
        ("宝宝满月了，黄疸已经退了", False),  # gone
        ("宝宝出生20天，医生看过说黄疸正常，在慢慢退", False),  # assessed and fading
        ("宝宝拉的屎颜色很浅，灰白色，眼睛也有点黄", True),  # pale stools
        ("宝宝黄疸，这两天不爱吃奶，总睡觉", True),  # jaundiced and sleepy / not feeding
    ],
)
def test_jaundice_by_age(text, urgent):
    result = triage(text)
    assert result.urgent is urgent, result.reasons
    if urgent:
        assert "severe_jaundice" in result.categories


@pytest.mark.parametrize(
    "text,urgent",
    [
        ("宝宝两个月，额头烫手", True),  # fever felt by hand, no number, under 3 months
        ("刚满月的宝宝额头滚烫", True),
        ("宝宝生下来第12天，今天身上摸着烫烫的", True),
        ("两个月宝宝洗完澡身上有点烫，量了37.2", False),  # measured and normal
        ("两岁孩子摸着额头烫手，量了37.6", False),  # older child, normal temperature
        ("两个月宝宝被滚烫的开水溅到了", False),  # hot water is not a fever
    ],
)
def test_fever_felt_by_hand_in_a_young_infant(text, urgent):
    assert triage(text).urgent is urgent, triage(text).reasons


# --- WHO general danger signs and NICE red features in parents' words ---------------------------------
@pytest.mark.parametrize(
    "text,category",
    [
        ("孩子吃啥吐啥，喝水也吐，没力气", "infant_not_feeding"),  # vomits everything
        ("宝宝一天都不肯吃奶了，一直在睡", "infant_not_feeding"),  # not feeding + lethargic
        ("宝宝拉肚子，今天尿布换下来都是干的，没怎么尿", "dehydration"),
        ("宝宝拉肚子好多天，捏起肚皮来半天弹不回去", "dehydration"),  # skin pinch
        ("孩子刚刚翻白眼，浑身一挺一挺的", "seizure"),
        ("宝宝哭声很尖，一直尖叫着哭，怎么哄都停不下来", "unresponsive"),  # high-pitched cry
        ("宝宝逗他也不笑，眼神发呆，一点反应都没有", "unresponsive"),  # no response to social cues
        ("宝宝每次呼气都哼哼，喘得很快", "breathing"),  # grunting
        ("孩子咳嗽像狗叫，吸气时喉咙里呼哧呼哧响，坐着不动也这样", "breathing"),  # stridor at rest
        ("孩子身上一块一块发花，像大理石一样，在发烧", "poor_perfusion"),  # mottled
        ("宝宝发烧，脸色灰白，嘴唇没有血色", "poor_perfusion"),  # pale / ashen
        ("孩子被大狗咬了，脸上和脖子上都是伤", "animal_bite"),
        ("宝宝身上有好多不明原因的淤青，保姆说不知道怎么弄的", "suspected_abuse"),
        ("孩子在浴缸里呛了好多水，捞起来后一直咳，嘴唇有点紫", "drowning"),
        ("一天给孩子吃了六次对乙酰氨基酚，是不是吃多了", "poisoning"),  # paracetamol overdose
        ("孩子的小鸡鸡被热水烫到了，起泡了", "burns"),  # genitals
    ],
)
def test_danger_signs_in_colloquial_words(text, category):
    result = triage(text)
    assert result.urgent and category in result.categories, result.reasons


# --- shared vocabulary that is not urgent ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "宝宝两个月，体温37度2，正常吗",
        "上次抽血查了血常规，结果正常",
        "宝宝嘴唇有点干，起皮了",
        "宝宝吐了一次奶，吐完还在笑",
        "宝宝打嗝的时候身体一抽一抽的",  # 'unless' in the same clause
        "孩子跑完步喘得厉害，休息一下就好了",
        "宝宝哭的时候囟门会鼓一下，不哭就平了",
        "孩子噎住了怎么做海姆立克，我想学一下",  # learning ahead of time
        "孩子的同学溺水了，我们想给孩子讲讲安全",  # another child
        "邻居家的孩子被狗咬了脸，我家孩子很害怕狗，怎么办",
        "溺水的孩子应该怎么急救",  # a general question
        "孩子以前抽过一次，是热性惊厥",  # 是… labels the past episode before it
        "儿子有热性惊厥史，今天没发烧",
        "宝宝囟门没有鼓，正常",  # negated inside the window
        "孩子拉肚子，眼睛不凹，嘴巴不干，精神好",
        "女儿说作业写得想死，是开玩笑的，她笑着说的，平时很开朗",  # hyperbole
        "宝宝舔了一口爸爸的啤酒泡沫，没事吧",
    ],
)
def test_shared_vocabulary_is_not_urgent(text):
    assert not triage(text).urgent, triage(text).reasons


def test_scope_markers():
    assert is_hypothetical("电视上说有孩子吞了磁力珠要手术")
    assert is_hypothetical("孩子误吞硬币后一般会怎么样")
    assert not is_hypothetical("孩子吞了磁力珠")


def test_experience_still_going_on_in_the_next_clause_counts():
    assert triage("孩子被大人使劲摇晃过，现在一直吐，不太清醒").urgent  # 过, but still going on
    assert not triage("孩子以前被摇晃过，现在很好").urgent
