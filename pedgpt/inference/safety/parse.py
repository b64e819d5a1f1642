"""Pure helpers that read the facts a red-flag rule needs out of a parent's Chinese message.

* numbers: Arabic or Chinese numerals (``"38.5"``, ``"三十九"``, ``"两"``, ``"五六"``) → float;
* age: ``"8个月"``, ``"两岁半"``, ``"3岁2个月"``, ``"出生20天"``, ``"生下来第9天"``, ``"出生不到24小时"``,
  ``"新生儿"``, ``"1周岁"``, ``"半岁"``, ``"百天"`` → months;
* temperature: ``"38.5度"``, ``"39℃"``, ``"三十九度五"``, ``"烧到40"`` → °C;
* duration: ``"发烧5天"``, ``"三天了"``, ``"一个礼拜"``, ``"48小时"`` → days; hours without urine;
* breathing rate: ``"一分钟呼吸七十多次"`` → 70 per minute; fall height: ``"从1米多高的柜子上摔下来"`` → 1 m;
* clause scope: negation (``"没有抽搐"``, ``"不抽了"``), hypotheticals (``"如果抽搐怎么办"``) and history
  (``"上次抽过一次"``, ``"以前…"``), so that a red flag only counts for what is happening now.

Every function is pure; positions are character offsets into the string that was passed in. Every function is
linear in the length of its input: number runs are capped (``\\d{1,4}``, six numerals), scope checks read a bounded
window, and no repetition in a pattern is unbounded, so a 4,000-character message cannot stall a caller.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# --- numbers ------------------------------------------------------------------------------------------
_CN_DIGIT = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
#: A number as parents write it: Arabic (with decimals) or Chinese numerals (with 点 decimals).
#: Runs are capped (4 digits, 6 numerals) so that a long run of digits cannot make a search quadratic.
NUM = r"(?:\d{1,4}(?:\.\d{1,2})?|[零〇一二两俩三四五六七八九十百]{1,6}(?:点[零〇一二三四五六七八九]{1,2})?)"


def _cn_integer(s: str) -> float | None:
    """Chinese integer numerals → value: 十一 → 11, 三十九 → 39, 一百 → 100; 五六 (a range) → 6."""
    if not s:
        return None
    if all(c in _CN_DIGIT for c in s):
        if len(s) == 2 and _CN_DIGIT[s[1]] - _CN_DIGIT[s[0]] == 1:  # 五六天, 七八天: a range, take the top
            return float(_CN_DIGIT[s[1]])
        return float(int("".join(str(_CN_DIGIT[c]) for c in s)))
    total, current = 0, 0
    for c in s:
        if c in _CN_DIGIT:
            current = _CN_DIGIT[c]
        elif c == "十":
            total += (current or 1) * 10
            current = 0
        elif c == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return float(total + current)


def parse_number(s: str) -> float | None:
    """``"38.5"`` → 38.5, ``"三十八点五"`` → 38.5, ``"两"`` → 2.0, ``"十"`` → 10.0; None if not a number."""
    s = s.strip()
    if not s:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return float(s)
    whole, _, frac = s.partition("点")
    value = _cn_integer(whole)
    if value is None:
        return None
    if frac:
        if not all(c in _CN_DIGIT for c in frac):
            return None
        value += float("0." + "".join(str(_CN_DIGIT[c]) for c in frac))
    return value


# --- clauses and scope --------------------------------------------------------------------------------
_CLAUSE_SPLIT = re.compile(r"[，,。.!！?？;；、\n]|但是|但|不过|可是|然后")
#: Negation that scopes over what follows; not the 没 of 有没有 / 不 of 是不是, 会不会 (questions).
_NEG = r"(?<![有是会能要好])(?:并没有|没有|并未|未见|未|没|无|不是|不|否认|并非)"
#: Words that may stand between a negation and the symptom it negates (没有 出现过 抽搐; 不 到 38度).
_FILLER = (
    r"(?:也|都|再|还|有|出现|发生|见|明显|什么|任何|过|怎么|太|很|一直|特别|那么|这么|的|地|"
    r"超过|达到|到|上|高于|感觉|觉得|伴|伴有|出|发)"
)
_NEGATED_TAIL = re.compile(_NEG + _FILLER + r"*(?:[\u4e00-\u9fff]{1,4}(?:和|或|、|跟|及|或者))?" + _FILLER + r"*$")
_HYPOTHETICAL = re.compile(
    r"如果|万一|假如|要是|假设|的话|会不会(?!是)|是不是会|预防|防止|避免|以防|担心|害怕|会影响|影响智力|"
    r"后遗症|(?:时|的时候)(?:应该|该|要|需要)?(?:怎么|如何)|医生说|诊断(?:为|是)|确诊|什么情况|哪些情况|多少度(?:要|需要|算|才|该|就)|怎么判断|怎么区分|怎么看|什么是|科普|有哪些|"
    r"一般(?:会|怎么|如何|需要|要)|只是问问|随便问问|为什么(?:会|要)|为啥会|"
    r"(?:孩子|宝宝|儿子|女儿|他|她)的同学|(?:邻居|别人|朋友|亲戚|同事)家的?(?:孩子|小孩|宝宝|女儿|儿子|娃)|"
    r"新闻|电视上|网上(?:说|看到)|听说|报道|(?:溺水|抽搐|惊厥|噎住|烫伤|中毒|昏迷|窒息)的(?:孩子|小孩|宝宝|人|儿童)"
)
_PAST = re.compile(
    r"上次|上回|曾经|去年|前年|上个?月|上个?(?:周|星期|礼拜)|小时候|那次|前段时间|前些(?:天|日子)|"
    r"前阵子|既往|病史|做过手术|出院|(?:\d{1,3}|[一二两三四五六七八九十几半]{1,4})个?多?(?:年|月|周|星期|礼拜)(?:以)?前|"
    r"(?:^|孩子|宝宝|宝贝|他|她|娃|儿子|女儿)(?:以前|之前)|" + NUM + r"个?多?(?:月|岁|天|周)(?:大)?(?:的)?时(?:候)?"
)
_ONGOING = re.compile(
    r"一直|还在|还是|仍|至今|到现在|持续|又|反复|现在还|这次|开始|刚才|刚刚|正在|今天|今晚|"
    r"昨晚|昨天|这两天|这几天"
)


@dataclass(frozen=True)
class Clause:
    start: int
    end: int
    text: str


def clauses(text: str) -> list[Clause]:
    """Split at punctuation and contrast words (但是, 不过); each clause keeps its offsets into ``text``."""
    out, start = [], 0
    for m in _CLAUSE_SPLIT.finditer(text):
        if m.start() > start:
            out.append(Clause(start, m.start(), text[start : m.start()]))
        start = m.end()
    if start < len(text):
        out.append(Clause(start, len(text), text[start:]))
    return out


def clause_index(parts: list[Clause], pos: int) -> int:
    """Index of the clause holding character ``pos`` (the last one starting at or before it); O(log n)."""
    return max(bisect.bisect_right(parts, pos, key=lambda c: c.start) - 1, 0)


def clause_at(parts: list[Clause], pos: int) -> Clause:
    """The clause holding character ``pos`` (the last one starting at or before it)."""
    return parts[clause_index(parts, pos)]


#: How far before a symptom (characters) a negation is looked for; longer prefixes are cut to this.
NEGATION_WINDOW = 24


def is_negated(prefix: str) -> bool:
    """Whether the clause text just before a symptom negates it: ``"没有"``, ``"也没"``, ``"不"``, ``"没有发烧和"``.

    Only the last :data:`NEGATION_WINDOW` characters are read (a negation further away is not "just before")."""
    return bool(_NEGATED_TAIL.search(prefix[-NEGATION_WINDOW:]))


def is_hypothetical(clause_text: str) -> bool:
    """``"如果抽搐怎么办"``, ``"热性惊厥会影响智力吗"``, ``"怎么预防"``, ``"医生说是热性惊厥"``: a question or a
    diagnosis label, not an event being described."""
    return bool(_HYPOTHETICAL.search(clause_text))


#: A clause that refers back to the time of the one before ("当时吐了一次"): it is history when that one is.
REFERS_BACK = re.compile(r"^\s{0,2}(?:当时|那时(?:候)?|那会儿?|那次|是(?!不是))")


def is_history(clause_text: str) -> bool:
    """``"上次抽过一次"``, ``"去年得过肺炎"``: a past episode, unless the clause says it is still going on."""
    return bool(_PAST.search(clause_text)) and not _ONGOING.search(clause_text)


# --- age ----------------------------------------------------------------------------------------------
_PERSON = (
    r"(?:宝宝|宝贝|孩子|小孩子?|儿子|女儿|闺女|娃娃?|小宝|大宝|二宝|宝|婴儿|小朋友|男孩|女孩|男宝宝?|女宝宝?|"
    r"孙子|孙女|外孙女?|小家伙|弟弟|妹妹|老大|老二|患儿|小儿|baby|BB|bb)"
)
_AGE_FILLER = (
    r"(?:今年|现在|目前|出生|生下来|才|刚刚|刚|已经|已|快|都|是|满|就|有|大概|约|我家|还不到|不到|没到|不满|未满|不足|还没到)"
    r"{0,4}"
)
_NOT_AN_AGE_AFTER = re.compile(
    r"^(?:前|以前|之前|后|以后|以内|以下|以上|之内|没|不(?!到|满|足)|都|一直|来|以来|时|的时候|那会|那年)"
)
_YEARS = re.compile(r"(?P<y>" + NUM + r"|半)(?:周)?岁(?P<half>半)?(?:多)?(?:零?(?P<m>" + NUM + r")个?(?:多)?月)?")
_MONTHS = re.compile(r"(?P<n>" + NUM + r")(?:几|来)?(?:个)?(?P<more>多|半|来)?(?:个)?(?:月龄|月)(?P<half>半)?")
_DAYS = re.compile(r"(?P<n>" + NUM + r")(?:多|几|来)?(?P<unit>天|日|周|个?星期|个?礼拜)")
#: "生下来第9天", "出生后第3周": an ordinal day or week since birth.
_BIRTH_ORDINAL = re.compile(
    r"(?:出生|生下来|生出来|出生后|生后|出生以后|生完)(?:的|以后|后)?第(?P<n>"
    + NUM
    + r")(?P<unit>天|日|周|个?星期|个?礼拜)"
)
#: "出生不到24小时", "生下来才十几个小时": hours since birth (几 reads as 6, 十几 as 15).
_BIRTH_HOURS = re.compile(
    r"(?:出生|生下来|生出来|出生后|生后)(?:才|还|刚|刚刚)?(?:不到|没到|不足|没有)?"
    r"(?P<n>" + NUM + r"|十几|几)(?:个)?(?:多)?(?:小时|钟头)"
)
_SPECIAL_AGES = (
    (re.compile(r"(?:出生|生下来|生出来)(?:的)?(?:当天|头一天|那天)"), 0.02),
    (re.compile(r"新生儿|新生宝宝|刚出生|刚生下来"), 0.5),
    (re.compile(r"满月"), 1.0),
    (re.compile(r"(?:一)?百天"), 3.3),
    (re.compile(r"半个月大|出生半个月"), 0.5),
)
_PERSON_BEFORE = re.compile(_PERSON + _AGE_FILLER + r"$")
_BIRTH_BEFORE = re.compile(r"(?:出生|生下来|出生后|生了|出生了|生出来|生完|降生|落地|才|刚|刚刚)(?:才|刚|只有|不到)?$")
_AGE_AFTER = re.compile(
    r"^(?:大|的(?:宝宝|宝贝|孩子|小孩|婴儿|男孩|女孩|男宝|女宝|娃|小朋友|新生儿|时候)|宝宝|婴儿|"
    r"男宝|女宝|的娃|龄)"
)
_AGE_ONLY_REST = re.compile(r"\s{0,2}(?:男|女|男宝|女宝|男孩|女孩)?\s{0,2}(?:大|了)?\s{0,2}")


@dataclass(frozen=True)
class Found:
    """A value read from the text, with the span it came from."""

    value: float
    start: int
    end: int


#: A clause that is "only an age" ("2个月", "男 3天了") has at most this many other characters.
_AGE_ONLY_SLACK = 8


def _short_clause_around(text: str, start: int, end: int) -> str | None:
    """The clause holding ``text[start:end]`` when it has at most ``_AGE_ONLY_SLACK`` other characters, else None
    (read from a bounded window, so that many numbers in one long clause stay linear)."""
    lo = max(0, start - _AGE_ONLY_SLACK - 2)
    hi = min(len(text), end + _AGE_ONLY_SLACK + 2)
    before = [m.end() for m in _CLAUSE_SPLIT.finditer(text, lo, start)]
    after = _CLAUSE_SPLIT.search(text, end, hi)
    c_start = before[-1] if before else (0 if lo == 0 else None)
    c_end = after.start() if after else (len(text) if hi == len(text) else None)
    if c_start is None or c_end is None or (c_end - c_start) - (end - start) > _AGE_ONLY_SLACK:
        return None
    return text[c_start:c_end]


def _is_age_context(text: str, start: int, end: int, weak: bool) -> bool:
    """Whether the number span reads as an age (宝宝8个月, 出生20天, 10周大的宝宝, a clause that is only "2个月")."""
    before, after = text[max(0, start - 12) : start], text[end : end + 6]
    if _NOT_AN_AGE_AFTER.match(after):
        return False
    if _AGE_AFTER.match(after) or _BIRTH_BEFORE.search(before):
        return True
    if _PERSON_BEFORE.search(before):
        if not weak:
            return True
        return after == "" or bool(re.match(r"^(?:了)?(?:[，,。.!！?？\s]|$)", after))
    if weak:
        return False
    clause = _short_clause_around(text, start, end)
    return clause is not None and bool(_AGE_ONLY_REST.fullmatch(clause.replace(text[start:end], "", 1)))


def parse_ages(text: str) -> list[Found]:
    """Every age stated in ``text``, in months (``"两岁半"`` → 30, ``"出生20天"`` → 0.67, ``"新生儿"`` → 0.5).

    ``岁`` always reads as an age; months, weeks and days only next to a child word, 出生, 大 or 的宝宝 (so that
    ``"咳嗽3个月了"`` and ``"发烧3天"`` are durations, not ages), and never before 前/后/以下 (``"两个月前"``).
    """
    out: list[Found] = []
    taken = bytearray(len(text) + 1)  # 1 where a years / months span already stands
    for m in _YEARS.finditer(text):
        if text[m.end() : m.end() + 1] == "月" or text[max(0, m.start() - 1) : m.start()] == "孕":
            continue
        years = 0.5 if m.group("y") == "半" else parse_number(m.group("y"))
        if years is None:
            continue
        months = years * 12 + (6 if m.group("half") else 0)
        if m.group("m"):
            months += parse_number(m.group("m")) or 0
        out.append(Found(months, m.start(), m.end()))
        taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for m in _MONTHS.finditer(text):
        if taken[m.start()] or text[max(0, m.start() - 1) : m.start()] == "孕":
            continue
        n = parse_number(m.group("n"))
        if n is None or n > 36:
            continue
        if not (m.group(0).endswith("月龄") or _is_age_context(text, m.start(), m.end(), False)):
            continue
        half = 0.5 if "半" in ((m.group("more") or "") + (m.group("half") or "")) else 0.0
        out.append(Found(n + half, m.start(), m.end()))
        taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for pattern in (_BIRTH_ORDINAL, _BIRTH_HOURS):
        for m in pattern.finditer(text):
            n = {"几": 6.0, "十几": 15.0}.get(m.group("n")) or parse_number(m.group("n"))
            if n is None or taken[m.start()]:
                continue
            unit = m.groupdict().get("unit")
            days = n / 24 if unit is None else (n if unit in ("天", "日") else n * 7)
            if days <= 120:
                out.append(Found(round(days / 30.4, 2), m.start(), m.end()))
                taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for m in _DAYS.finditer(text):
        if taken[m.start()] or text[max(0, m.start() - 1) : m.start()] in ("孕", "第"):
            continue
        n = parse_number(m.group("n"))
        if n is None or not _is_age_context(text, m.start(), m.end(), True):
            continue
        days = n if m.group("unit") in ("天", "日") else n * 7
        if days <= 120:
            out.append(Found(round(days / 30.4, 2), m.start(), m.end()))
    for pattern, months in _SPECIAL_AGES:
        for m in pattern.finditer(text):
            if not taken[m.start()]:
                out.append(Found(months, m.start(), m.end()))
    return sorted(out, key=lambda f: f.start)


def youngest_age_months(text: str) -> float | None:
    """The youngest age stated (the conservative choice when siblings are mentioned), or None."""
    ages = parse_ages(text)
    return min(a.value for a in ages) if ages else None


# --- temperature --------------------------------------------------------------------------------------
_TEMP_UNIT = re.compile(
    r"(?P<n>" + NUM + r")\s{0,2}(?:度|℃|°C|°|摄氏度)(?P<frac>[一二三四五六七八九\d](?![天个岁月小]))?(?:多)?"
)
_TEMP_LEAD = re.compile(
    r"(?:体温|烧到|烧了|温度|发烧|发热|量了|测了|测的|腋温|耳温|额温|肛温|口温|高烧|低烧|烧)"
    r"(?:计|枪)?(?:是|有|到|为|在|了|都|最高|达到|竟然|直接|一下|下){0,4}\s{0,2}(?P<n>\d{2}(?:\.\d)?)(?![\d.天个岁月小次分%])"
)
#: The second value of a range ("37.9到38.3"), and a bare decimal in body range ("发烧，40.5").
_TEMP_RANGE = re.compile(
    r"(?:3[4-9]|4[0-3])(?:\.\d)?\s{0,2}(?:度|℃)?\s{0,2}(?:到|至|~|～|-|－|—)\s{0,2}"
    r"(?P<n>(?:3[4-9]|4[0-3])(?:\.\d)?)(?![\d.])"
)
_TEMP_DECIMAL = re.compile(
    r"(?<![\d.])(?P<n>(?:3[5-9]|4[0-2])\.\d)(?![\d.]|\s{0,2}(?:kg|KG|公斤|斤|cm|厘米|元|块|ml|毫升|周|%|秒|分))"
)
_NOT_BODY = re.compile(r"(?:水温|室温|气温|温水|热水|洗澡水|天气|空调|外面|奶温|泡奶|水)[^，。]{0,3}$")
_NOT_BODY_AFTER = re.compile(r"(?:左右)?(?:的)?(?:水|温水|热水|天|高温|室温)")


def parse_temperatures(text: str) -> list[Found]:
    """Body temperatures in °C: ``"38.5度"``, ``"39℃"``, ``"三十九度五"`` (39.5), ``"38度8"``, ``"烧到40"``.

    Only values in 34–43 °C count; water, room and weather temperatures (``"40度的水"``) are skipped.
    """
    out: list[Found] = []
    for m in _TEMP_UNIT.finditer(text):
        value = parse_number(m.group("n"))
        if value is None:
            continue
        if m.group("frac") and value == int(value):
            value += (parse_number(m.group("frac")) or 0) / 10
        if (
            34.0 <= value <= 43.0
            and not _NOT_BODY.search(text[max(0, m.start() - 6) : m.start()])
            and not _NOT_BODY_AFTER.match(text, m.end())
        ):
            out.append(Found(round(value, 1), m.start("n"), m.end()))
    seen = {f.start for f in out}
    for pattern in (_TEMP_LEAD, _TEMP_RANGE, _TEMP_DECIMAL):
        for m in pattern.finditer(text):
            value = float(m.group("n"))
            if m.start("n") not in seen and 34.0 <= value <= 43.0 and not _NOT_BODY_AFTER.match(text, m.end()):
                out.append(Found(value, m.start("n"), m.end()))
                seen.add(m.start("n"))
    return sorted(out, key=lambda f: f.start)


# --- durations ----------------------------------------------------------------------------------------
_DURATION = re.compile(
    r"(?:第(?P<nth>" + NUM + r")天)|(?P<n>" + NUM + r"|半)(?:个)?(?:多)?"
    r"(?P<unit>天|日|周|星期|礼拜|个月|月|小时|钟头|晚上|晚|夜)(?:多)?(?!大|的时|时|前|以前|之前)"
)
_UNIT_DAYS = {
    "天": 1.0,
    "日": 1.0,
    "周": 7.0,
    "星期": 7.0,
    "礼拜": 7.0,
    "个月": 30.0,
    "月": 30.0,
    "小时": 1 / 24,
    "钟头": 1 / 24,
    "晚上": 1.0,
    "晚": 1.0,
    "夜": 1.0,
}


def parse_durations(text: str) -> list[Found]:
    """Durations in days: ``"5天"`` → 5, ``"一周"`` → 7, ``"一个礼拜"`` → 7, ``"48小时"`` → 2, ``"第六天"`` → 6,
    ``"七八天"`` → 8. Spans that are ages (``"3个月大的宝宝"``) are left out."""
    matches = list(_DURATION.finditer(text))
    if not matches:
        return []
    is_age = bytearray(len(text) + 1)
    for a in parse_ages(text):
        is_age[a.start : a.end] = b"\x01" * (a.end - a.start)
    out: list[Found] = []
    for m in matches:
        if is_age[m.start()]:
            continue
        if m.group("nth"):
            n = parse_number(m.group("nth"))
            if n is not None:
                out.append(Found(n, m.start(), m.end()))
            continue
        n = 0.5 if m.group("n") == "半" else parse_number(m.group("n"))
        if n is not None:
            out.append(Found(round(n * _UNIT_DAYS[m.group("unit")], 3), m.start(), m.end()))
    return out


_NO_URINE = r"(?:没|没有|无|不)(?:有)?(?:怎么)?(?:尿|小便|尿尿|撒尿|排尿|拉尿|尿过)"
_NAPPY = r"(?:尿不湿|尿布|纸尿裤|尿片|尿裤)"
_SPAN_HOURS = {
    "一天一夜": 24,
    "一整天": 24,
    "一天": 24,
    "整天": 24,
    "大半天": 12,
    "一晚上": 10,
    "一整晚": 10,
    "一夜": 10,
    "半天": 8,
    "一上午": 5,
    "一下午": 5,
}
_SPAN = "|".join(sorted(_SPAN_HOURS, key=len, reverse=True))
_URINE_HOURS = re.compile(
    r"(?:(?P<n1>"
    + NUM
    + r")(?:多)?(?:个)?(?:多)?(?:小时|钟头)|(?P<s1>"
    + _SPAN
    + r"))[^，,。]{0,4}?(?:都|也|还)?"
    + _NO_URINE
    + r"|"
    + _NO_URINE
    + r"(?:了)?(?:已经|有|快|超过)?(?:(?P<n2>"
    + NUM
    + r")(?:多)?(?:个)?(?:多)?(?:小时|钟头)|(?P<s2>"
    + _SPAN
    + r"))"
    + r"|(?:(?P<n3>"
    + NUM
    + r")(?:多)?(?:个)?(?:多)?(?:小时|钟头)|(?P<s3>"
    + _SPAN
    + r"))[^，,。]{0,8}"
    + _NAPPY
    + r"[^，,。]{0,4}干"
    + r"|"
    + _NAPPY
    + r"[^，,。]{0,4}?(?:(?P<n5>"
    + NUM
    + r")(?:多)?(?:个)?(?:多)?(?:小时|钟头)|(?P<s5>"
    + _SPAN
    + r"))[^，,。]{0,4}干"
    + r"|从(?:早上|上午|昨晚|昨天晚上|昨天|中午)(?P<s4>)到现在[^，,。]{0,3}"
    + _NO_URINE
)


def no_urine_hours(text: str) -> list[Found]:
    """Hours without passing urine: ``"十个小时没尿"`` → 10, ``"一天没小便"`` → 24, ``"从早上到现在没尿"`` → 8."""
    out: list[Found] = []
    for m in _URINE_HOURS.finditer(text):
        n = m.group("n1") or m.group("n2") or m.group("n3") or m.group("n5")
        span = m.group("s1") or m.group("s2") or m.group("s3") or m.group("s5")
        if n:
            hours = parse_number(n)
        elif span:
            hours = float(_SPAN_HOURS[span])
        else:  # 从早上到现在: most of a day
            hours = 8.0
        if hours is not None:
            out.append(Found(hours, m.start(), m.end()))
    return out


# --- breathing rate and fall height -------------------------------------------------------------------
_PER_MINUTE = re.compile(
    r"(?:一分钟|每分钟|1分钟|每分|一分)(?:内)?(?:呼吸|喘气|喘|吸气)?(?:了|有|达到|是|大概|差不多|都|能|快)?"
    r"(?P<n>" + NUM + r")(?:多)?(?:次|下)"
)
_BREATH_WORD = re.compile(r"呼吸|喘|气")
_HEART_WORD = re.compile(r"心跳|心率|脉搏|心脏|脉")


def respiratory_rates(text: str) -> list[Found]:
    """Breaths per minute: ``"一分钟呼吸七十多次"`` → 70, ``"呼吸很快，一分钟六十多下"`` → 60 (the clause or the
    one before must speak of breathing, and not of the heart)."""
    matches = list(_PER_MINUTE.finditer(text))
    if not matches:
        return []
    parts = clauses(text) or [Clause(0, len(text), text)]
    out = []
    for m in matches:
        n = parse_number(m.group("n"))
        i = clause_index(parts, m.start())
        near = parts[i].text + (parts[i - 1].text if i > 0 else "")
        if n is not None and _BREATH_WORD.search(near) and not _HEART_WORD.search(parts[i].text):
            out.append(Found(n, m.start(), m.end()))
    return out


_HEIGHT = re.compile(r"(?P<n>" + NUM + r"|半)(?:多)?(?:米|m)(?:多)?(?:高)?(?!长|宽|深|远)")
_FALL = re.compile(r"摔|掉|跌|坠|滚|栽|落下|翻下")
_NOT_AS_HIGH = re.compile(r"(?:高)?(?:不到|以下|以内|之内)")
_BODY_HEIGHT = re.compile(r"(?:身高|个子|个头|长到|身长|长了|高了)\s{0,1}$")


def fall_heights(text: str) -> list[Found]:
    """Heights in metres that something fell from: ``"从1米多高的柜子上摔下来"`` → 1, ``"从树上掉下来，大概三米"``
    → 3 (a fall word within 16 characters of the same sentence; a child's own height is not a fall)."""
    out = []
    for m in _HEIGHT.finditer(text):
        n = 0.5 if m.group("n") == "半" else parse_number(m.group("n"))
        if (
            n is None
            or _BODY_HEIGHT.search(text, max(0, m.start() - 3), m.start())
            or _NOT_AS_HIGH.match(text, m.end())
        ):
            continue
        lo, hi = max(0, m.start() - 16), min(len(text), m.end() + 16)
        before, after = text[lo : m.start()], text[m.end() : hi]
        before = re.split(r"[。！？!?\n]", before)[-1]
        after = re.split(r"[。！？!?\n]", after)[0]
        if _FALL.search(before) or _FALL.search(after):
            out.append(Found(n, m.start(), m.end()))
    return out
