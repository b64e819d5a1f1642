"""The table of pediatric red flags: what a parent may say that needs emergency care now.

Written by the pedgpt team from public pediatric guidance (WHO IMCI general danger signs, AAP / NICE
"when to seek emergency care" advice for fever, injuries and poisoning) in our own words. Each
:class:`RedFlag` has an id, a Chinese and an English name, the trigger patterns (regular expressions over
one clause of a parent's message, with the Chinese colloquial forms parents use), the documented
thresholds, the reason told to the parent and the action (call 120 / emergency department, the poison
line, or crisis support). Numeric thresholds live in the constants below and are applied by
:mod:`pedgpt.inference.safety.triage`; see ``pedgpt/inference/safety/README.md`` for the table in prose.

Pattern conventions: a named group starting with ``sym`` marks the symptom word, so that "阴囊有点肿不痛"
is read as a negated pain; ``needs`` lists contexts (``CONTEXTS`` keys, or computed ``young_infant``) that
must also be present somewhere in the conversation, ``"!name"`` one that must be absent; ``unless`` is a
pattern that, found in the same clause, makes the match not count ("打嗝的时候一抽一抽", "跑完步喘得厉害").
Every repetition is bounded (``{0,n}``), so that a pattern costs time linear in the text. The table is
ordered by priority: ``Triage.category`` is the first matched row.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- numeric thresholds (applied in triage.py) --------------------------------------------------------
#: (age below, in months; temperature at least, in °C): fever bands that are urgent by age alone. The first
#: band reads "3 months or younger" (AAP): a parent's "3个月" (3.0–3.4 months) is inside it.
INFANT_FEVER_BANDS: tuple[tuple[float, float], ...] = ((3.5, 38.0), (6.0, 39.0))
#: (age below, in months; temperature at most, in °C): low-temperature bands (the last one covers all ages).
LOW_TEMPERATURE_BANDS: tuple[tuple[float, float], ...] = ((3.5, 35.5), (float("inf"), 35.0))
#: A temperature at least this high (°C) is urgent at any age.
HIGH_FEVER_C: float = 40.0
#: Fever lasting at least this many days (the Kawasaki-disease criterion) is urgent at any age.
PROLONGED_FEVER_DAYS: float = 5.0
#: No urine for at least this many hours is a severe-dehydration sign.
NO_URINE_HOURS: float = 8.0
#: The lowest temperature (°C) that counts as fever when a number is given.
FEVER_C: float = 38.0
#: Breaths per minute at or above which breathing is urgent at any age under 5 (NICE red: RR > 60).
FAST_BREATHING_PER_MIN: float = 60.0
#: A fall from at least this height (m) is major trauma; for a child under 12 months (or of unknown age) the
#: lower height applies (NICE head-injury guidance: a fall of more than 1 m for an infant, 3 m otherwise).
FALL_HEIGHT_M: float = 2.0
FALL_HEIGHT_INFANT_M: float = 1.0
#: Jaundice by age (days): any visible jaundice younger than this is urgent (NICE: jaundice in the first 24 h;
#: a parent's "第二天" may mean 24–48 h, so day 1 only) ...
EARLY_JAUNDICE_DAYS: float = 2.0
#: ... and jaundice still visible at this age or older (prolonged jaundice in a term baby) needs a doctor now.
PROLONGED_JAUNDICE_DAYS: float = 14.0
#: Age (months) below which the jaundice-by-age rules apply and "young_infant" holds.
YOUNG_INFANT_MONTHS: float = 3.5

# --- actions ------------------------------------------------------------------------------------------
EMERGENCY_NUMBER = "120"
POISON_LINE = "中毒急救咨询热线 010-83132345（中国疾控中心中毒控制中心，24小时）"
CRISIS_LINE = "心理援助热线 12356"
ACTIONS: dict[str, str] = {
    "emergency": f"请立即拨打{EMERGENCY_NUMBER}急救电话，或马上带孩子去最近医院的急诊，不要在家观察等待。",
    "poison": (
        f"请立即拨打{EMERGENCY_NUMBER}，同时可拨打{POISON_LINE}询问处理方法；不要自行催吐，"
        "带上药瓶或包装，尽快去医院急诊。纽扣电池、磁铁必须尽快由医生取出。"
    ),
    "crisis": (
        f"请马上陪在孩子身边，不要让孩子独处，收起药物、刀具等危险物品；已经受伤或有生命危险时立即拨打"
        f"{EMERGENCY_NUMBER}（或110）；也可拨打{CRISIS_LINE}寻求专业帮助。"
    ),
}
DISCLAIMER = "本助手提供的是健康科普信息，不能代替医生的面诊和诊断；孩子情况紧急时请立即拨打120或去医院急诊。"


@dataclass(frozen=True)
class Trigger:
    pattern: str
    needs: tuple[str, ...] = ()
    unless: str = ""


@dataclass(frozen=True)
class RedFlag:
    id: str
    name_zh: str
    name_en: str
    triggers: tuple[Trigger, ...]
    thresholds: str
    why: str
    action: str = "emergency"
    first_aid: str = ""


def T(pattern: str, *needs: str, unless: str = "") -> Trigger:
    return Trigger(pattern, tuple(needs), unless)


# --- shared fragments ---------------------------------------------------------------------------------
_C = r"[^，,。.!！?？;；\n]"  # one character inside a clause
_S = r"[^。.!！?？;；\n]"  # one character inside a sentence (commas allowed)
#: Skin that feels hot to the hand: how parents report a fever they did not measure ("额头烫手", "摸着烫烫的").
_HOT_SKIN = (
    r"(?:额头|脑门|头|身上|身子|全身|浑身|脖子|后背|背上|肚子|小脸|脸|手心|脚心|皮肤|摸着|摸起来|摸上去|一摸)"
    r"[^，,。被水油火汤]{0,3}(?:滚烫|发烫|烫手|烫烫|很烫|好烫|有点烫|特别烫|烫)|"
    r"(?<![水油火汤])(?:发烫|烫手)|滚烫(?!的(?:水|开水|油|汤|粥))"
)
_FEVER_WORD = (
    r"发烧|发热|发骚|发shao|高烧|高热|低烧|烧到|烧了|在烧|还烧|又烧|烧[得的]|烧起来|体温高|发高烧|烧一直|烧不退|"
    + _HOT_SKIN
)
_LETHARGY = (
    r"精神(?:差|不好|很差|萎靡|不振|不济)|没(?:有)?精神|没精身|没力气|没劲|蔫|嗜睡|一直(?:在)?睡|总(?:是|在)睡|"
    r"老(?:是|在)睡|光睡|只想睡|睡个不停|昏睡|昏昏沉沉|昏沉|迷迷糊糊|懒得睁眼|睁不开眼|不睁眼|"
    r"软绵绵|软软的|软趴趴|软塌塌|全身软|瘫软|无力|有气无力|反应(?:差|慢|迟钝)|不哭不闹|哭声(?:很|特别)?(?:弱|小)|"
    r"哼哼|不怎么醒|不爱动|不想动|不怎么动|躺着不动|一动不动|不理人|叫不醒|没反应"
)
#: Losing fluid: diarrhoea, or vomiting more than once (a single vomit is not counted).
_GI_LOSS = (
    r"上吐下泻|上吐下拉|吐泻|又吐又拉|腹泻|拉肚子|拉稀|水样便|拉水|蛋花(?:汤)?样|呕吐(?!物)|"
    r"吐(?:了)?(?:好多|很多|好几|几|一整|一天|一晚|一夜|一上午|一下午|[两三四五六七八九十]{1,2}|\d{1,2})(?:次|回|天|晚|夜|上午|下午)?|"
    r"一直吐|吐个不停|吐得(?:很|特别)?厉害|不停(?:地)?吐"
)
#: Little or no urine, or dry nappies, said without a number of hours.
_DRY = (
    r"(?:尿不湿|尿布|纸尿裤|尿片|尿裤)[^，,。.!！?？;；\n]{0,8}(?:都是|都|全是|一直是|还是)?干(?:的|巴巴|了)|"
    r"一直没(?:有)?(?:尿|小便|尿尿|撒尿)|(?:好久|半天|一上午|一下午|一天|一整天|一晚上|一夜|今天|从早上|从昨晚)"
    r"[^，,。.!！?？;；\n]{0,4}(?:都)?没(?:有)?(?:怎么)?(?:尿|小便|尿尿|撒尿)|几乎没(?:有)?尿|没(?:有)?怎么尿"
)
#: Vomits everything / cannot keep anything down (a WHO general danger sign).
_VOMITS_ALL = (
    r"(?:吃|喝|喂)(?:啥|什么|点啥|点什么|一口|口|下去的?|进去的?)?(?:东西|水|奶|药)?(?:就|都|全)(?:吐|呕)|"
    r"(?:吃|喝)(?:啥|什么)吐(?:啥|什么)|(?:喝|吃|喂)一口(?:就)?吐一口|(?:水|奶|东西|药)(?:都|也)?(?:喝|吃|咽|喂)不(?:进|下)(?:去)?|"
    r"(?:什么|啥)(?:都|也)(?:喝|吃)不(?:进|下)|全(?:都|部)吐(?:出来|了|掉|光)|(?:吃|喂|喝)一次吐一次|"
    r"(?:一|刚)(?:喂|吃|喝)" + _C + r"{0,4}就(?:全)?吐|"
    r"连水(?:都|也)(?:吐|喝不)|一(?:喝|吃|喂)就吐|喝水都吐|吃不进东西"
)
_INGEST = (
    r"误食|误服|误吞|误喝|误吃|吞了|吞下|吞进|吞|咽了|咽下|吃了|吃下|吃进|喝了|喝下|喝进|舔了|舔|偷吃|偷喝|"
    r"啃了|嚼了|咬破|当糖吃|塞进嘴|放进嘴|吞食|服用了|服下|喝掉|吃掉|喝过|吃过|吞过"
)
_TOXIC = (
    r"纽扣电池|电池|磁铁|磁珠|磁力珠|吸铁石|巴克球|农药|杀虫剂|除草剂|百草枯|敌敌畏|老鼠药|鼠药|灭鼠|蟑螂药|"
    r"驱蚊液|蚊香液|清洁剂|洗洁精|洗衣液|洗衣粉|洗衣凝珠|洗衣球|凝珠|消毒液|消毒水|84|漂白|洁厕|管道疏通|疏通剂|"
    r"除垢剂|酒精|白酒|酒(?!酿|心|窝|店)|发芽的土豆|夹竹桃|滴水观音|汽油|煤油|柴油|油漆|稀料|洗甲水|指甲油|樟脑丸|卫生球|干燥剂|水银|有毒|毒蘑菇|野蘑菇|"
    r"野生菌|烟头|烟油|电子烟|尼古丁|香烟|烟卷|烟丝|(?:一|半)(?:根|支)烟|(?:爸爸|爷爷|大人|外公|姥爷)的烟|药酒|精油|降压药|安眠药|避孕药|降糖药|抗抑郁|精神类药|心脏病药|镇静药|铁剂|铁片|"
    r"(?:降压|降糖|安眠|镇静|抗抑郁|心脏病|精神类|避孕|止痛|抗癫痫|甲状腺)(?:药|片|丸|胶囊)|护肤品|化妆品|爽肤水|精华液|面霜|"
    r"敌百虫|卸甲水|花露水|风油精|防冻液|玻璃水|机油|蚊香|除湿剂|漱口水|香水|扣子电池|扭扣电池|纽扣|水银|"
    r"安定|地西泮|止痛片|曲马多|阿普唑仑|毒鼠|灭蟑|杀虫|农药|硫酸|烧碱|火碱|氢氧化钠|双氧水|甲醛"
)
_MEDICINE = (
    r"药|药片|药丸|胶囊|糖浆|退烧药|感冒药|维生素|钙片|布洛芬|对乙酰氨基酚|泰诺林|美林|阿司匹林|扑热息痛|"
    r"止咳药|止咳糖浆|抗生素|头孢|混悬液|滴剂|软糖|小儿氨酚|氨酚|感冒灵|退热贴"
)
#: Supplements a child may take one of without harm: an adult's vitamin C is not an adult's medicine.
_SUPPLEMENT = r"维生素|维C|维D|钙|鱼肝油|益生菌|软糖"
_RLQ = (
    r"(?:右下腹|右下肚|右(?:边|侧)?(?:的)?(?:肚子|小肚子|腹部?)(?:的)?(?:下面|下边|下方|下部|靠下)|"
    r"右(?:边|侧)?(?:的)?(?:下面|下边|下方|下部|靠下)(?:的)?(?:肚子|小肚子|腹部?)|"
    r"(?:肚子|腹部?)(?:的)?右(?:边|侧)?(?:的)?(?:下面|下边|下方|下部|下))"
)
_THROAT_SWELL = r"(?:喉咙|嗓子|喉头|喉)" + _C + r"{0,4}(?:肿|发紧|紧|发堵|堵|憋)"
_PALMS_YELLOW = (
    r"(?:手心|脚心|脚底|手掌|脚掌)"
    + _C
    + r"{0,3}(?:都)?(?:黄|发黄)|(?:黄疸|黄)"
    + _C
    + r"{0,4}(?:到|蔓延到|延伸到|到了)"
    + _C
    + r"{0,2}(?:手心|脚心|脚底|手掌|脚掌)"
)
_ELDERS = (
    r"大人|爸爸|妈妈|爷爷|奶奶|外公|外婆|姥姥|姥爷|老人|哥哥|姐姐|我妈|我爸|他妈|他爸|孩子他爸|孩子他妈|婆婆|公公|"
    r"老公|老婆|家人|保姆|阿姨"
)
_NOT_SUPPLEMENT = r"(?!" + _SUPPLEMENT + r")"
#: In the same clause, these say the child did not swallow it (held it, smelt it, it was taken away).
_NOT_SWALLOWED = (
    r"闻了|闻一下|拿在手里|拿着玩|(?<!有)没(?:有)?(?:喝|吃|吞|咽|放嘴里|打开|碰)|瓶子外面|包装|收起来|收好|抢下来|漱口了|"
    r"(?:一小口|一口|一点|一下|泡沫)" + _C + r"{0,6}(?:啤酒|红酒|葡萄酒|米酒|醪糟|酒酿)"
)
_BULK = r"一整|整瓶|大半瓶|半瓶|一瓶|一板|一盒|一把|好几片|好几粒|好几颗|十几|几十|好多片|好多粒|全部"
_BURN = (
    r"烫伤|烧伤|灼伤|烫到|烫了|被" + _C + r"{0,5}烫|被火|着火|开水|热油|热汤|热水|热粥|火锅|蒸汽|暖水袋|热水袋|"
    r"暖宝宝|熨斗|烤箱|炉子|烧着了"
)
_BURN_SEVERE = (
    r"大面积|一大片|大片|(?:整个|整条|整只|半个|半边|大半个|大半)(?:手臂|胳膊|手|腿|脚|背|后背|胸|胸口|肚子|身子|身体|"
    r"脸|屁股|上身)|半个?身子?|全身|后背|前胸|胸口|(?:大|很多|好多|一片|一大片|一堆)(?:的)?"
    r"(?:水泡|水疱|泡)|皮(?:都)?(?:掉|脱|烂|焦)|发白|发黑|焦|(?:脸|面部|头皮|脖子|会阴|屁股|生殖器|小鸡鸡)"
    r"[^。.!！?？;；\n]{0,8}(?:起泡|水泡|水疱|起了泡|破皮)"
)
#: A blister on the face, neck, genitals, buttocks, hands or feet, anywhere in a sentence about a burn.
_SITE_BLISTER = (
    r"(?:脸|面部|头皮|脖子|会阴|屁股|生殖器|小鸡鸡|鸡鸡|私处|下体|阴部|阴囊|手心|手掌|脚底|脚心)"
    r"[^。.!！?？;；\n]{0,12}(?:起泡|水泡|水疱|起了泡|起了水泡|破皮|泡)"
)
_WATER = (
    r"浴缸|浴盆|澡盆|洗澡盆|泳池|游泳池|水池|河里|河中|河边|湖里|湖中|海里|海边|池塘|水塘|鱼塘|水缸|水桶|鱼缸|井里|"
    r"水沟|水坑|水里|水中|水下"
)
#: Jaundice words (the by-age rules are in thresholds.py): yellow skin or eyes, 黄疸 and its typos.
JAUNDICE = (
    r"黄疸|黄胆|黄旦|(?:皮肤|脸|脸上|身上|全身|眼白|眼睛|眼珠|巩膜|手心|脚心|脚底|手掌|肚子|腿|胳膊|小脸|身子)"
    r"[^，,。.!！?？;；\n]{0,4}(?:发黄|黄黄|很黄|有点黄|黄了|是黄|黄的|黄)|(?<![尿便])发黄|黄黄的|黄得|越来越黄|"
    r"还(?:很|是|有点|是很)?黄|(?:就|都|已经|开始|变|变得)(?:有点)?(?:发)?黄(?:了)|黄(?:到|过|遍)"
)
HEAVY_JAUNDICE = (
    r"全身(?:都)?(?:发)?黄|(?:很|特别|非常|好)黄|黄得(?:很|特别|非常)?(?:厉害|吓人|发亮|发橙|像橘子|像橙子)|越来越黄|"
    r"黄(?:得)?越来越|更黄了|(?:腿|脚|手|肚子|四肢|身上)(?:上)?(?:也|都)(?:发)?黄|黄(?:疸|胆)?(?:加重|很重|特别重|很高)|"
    r"像橘子|橘黄|黄(?:到|过|遍)(?:了)?(?:肚子|腿|脚|手|全身|胸|身上)"
)
#: Pale (acholic) stools: with jaundice in a young baby, a sign of a blocked bile duct.
PALE_STOOL = (
    r"(?:大便|屎|便便|粑粑|拉的|拉出来的|尿布上的便)[^，,。.!！?？;；\n]{0,6}"
    r"(?:白色|灰白|陶土|发白|颜色(?:很|特别|比较)?浅|浅色|米白|白白的|淡淡的)|陶土(?:色|样)"
)

#: Contexts a trigger may need; each must occur (not negated, not hypothetical, not history) somewhere.
CONTEXTS: dict[str, str] = {
    "fever": _FEVER_WORD,
    "lethargy": _LETHARGY,
    "head_trauma": (
        r"(?:摔|磕|撞|跌|碰|砸|掉|栽)" + _C + r"{0,8}(?:头|脑袋|后脑|额头|脑门)|"
        r"(?:头|脑袋|后脑勺?|额头|脑门)" + _C + r"{0,6}(?:摔|磕|撞|碰|砸|着地|朝下)|"
        r"(?:摔|跌|掉|滚)(?:下来|下去|倒|了一跤)"
    ),
    "allergic": r"过敏|风团|荨麻疹|蛰|蜇|打(?:了|完)?针|疫苗",
    "cold": r"冻[得的]|冷[得的]|太冷|天冷|着凉|游泳(?:后|时间(?:长|久)|太久)|从水里出来|冬天|在外面(?:玩|待)",
    "neonate": r"黄疸|黄胆|新生儿|出生|生下来|满月|月子|天大",
    "allergen": (
        r"过敏|吃了|吃完|喝了|打(?:了|完)?针|疫苗|输液|蛰|蜇|叮|花生|坚果|腰果|海鲜|虾|蟹|芒果|鸡蛋|牛奶|药|"
        r"(?:蚂蚁|蜜蜂|马蜂|黄蜂|虫|蚊子)(?:咬|叮|蜇|蛰)"
    ),
    "systemic": (
        r"(?:喉咙|嗓子)" + _C + r"{0,3}(?:发紧|紧|肿|难受|堵|痒)|喘(?!息性)|呼吸(?:困难|急促|费力|很快|不畅)|憋|"
        r"声音(?:变|哑|嘶哑)|(?:嘴唇|嘴|脸|眼睛|眼皮|舌头)" + _C + r"{0,3}肿|(?:一直|反复|好几次|不停)(?:地)?吐|"
        r"吐了好几|晕|脸色(?:发白|苍白)|头晕"
    ),
    "gi_loss": r"吐|呕|泻|拉肚子|拉稀|水样便|拉水|拉了" + _C + r"{0,3}次",
    "gi_loss_repeated": _GI_LOSS,
    "convulsive": r"抖|抽(?!血|鼻|屉|空|时间|纸|烟)|僵|挺|发硬|叫不应|叫不答应|没反应|不理|吐沫|白沫|咬|咂|发紫|发青|发烧|高烧",
    "cold_limbs": r"(?:手脚|手|脚|四肢|手指|脚丫|胳膊腿)" + _C + r"{0,3}(?:冰凉|冰冷|发凉|冰)",
    "burn": _BURN,
    "jaundice": JAUNDICE,
    "tic": r"抽动症|眨眼|清嗓子|挤眉弄眼|习惯性",
    "sound_sleep": r"睡得(?:很|特别|正)?香|太累了|熬夜|睡太晚|睡得晚",
    "water": _WATER + r"|游泳|浪|落水|溺",
    "boy": r"儿子|男孩|男宝|男生|小男孩|弟弟|哥哥|男,|男，",
    "sleepy": r"一直(?:在)?睡|光睡|只想睡|睡个不停|总(?:是|在)睡|老(?:是|在)睡|叫不醒|昏睡|嗜睡|睡不醒",
    "headache": r"头(?:很|特别|非常)?(?:疼|痛)|头晕",
    "electric_sign": r"麻|焦|发黑|烧|电了一下|被电|电到|晕|抽|哭",
    "belly_pain": r"(?:肚子|腹部|腹|肚)" + _C + r"{0,4}(?:疼|痛)",
    "assessed": (
        r"医生(?:说|讲|看|让|建议|检查|开)|看过医生|看了医生|(?:医院|诊所)" + _C + r"{0,3}(?:看|查)|复查|照光|蓝光|"
        r"黄疸值|胆红素|经皮|测了黄疸|查了黄疸"
    ),
    "colicky": (
        r"阵发|一阵一阵|哭闹|剧烈|肚子" + _C + r"{0,2}(?:疼|痛)|腹痛|缩成一团|蜷|打滚|哭[得的]" + _C + r"{0,2}厉害|尖叫"
    ),
    "transient": r"偶尔|一会儿?就好|一下就好|马上就好|拉完" + _C + r"{0,3}就好|不疼了|不痛了|过一会儿?就好",
}

# --- the table ----------------------------------------------------------------------------------------
RED_FLAGS: tuple[RedFlag, ...] = (
    RedFlag(
        "breathing",
        "呼吸困难/口唇发紫",
        "breathing difficulty or blue lips",
        (
            T(
                r"呼吸"
                + _C
                + r"{0,3}(?P<sym>困难|费劲|费力|吃力)|喘不(?:上|过|动)气|喘不上来|上不来气|透不过气|憋不过气|"
                r"喘气"
                + _C
                + r"{0,2}(?:费劲|困难)|三凹征?|(?:肋骨|锁骨|胸口|胸骨|肋间|脖子下面|喉咙下面|胸部)"
                + _C
                + r"{0,6}(?:凹|陷|吸进去)|"
                r"鼻(?:翼|子|孔)"
                + _C
                + r"{0,2}(?:煽动|扇动|一扇一扇|一张一张|一张一合|在扇|在煽|扇)|吸气(?:时|的时候)"
                + _C
                + r"{0,8}(?:凹|陷)|呼吸(?:很|特别|非常)?急促|"
                r"呼吸(?:很|特别|非常)快|吸不(?:上|进|过)(?:气|来)|张(?:大|着)?(?:嘴|口)(?:巴)?(?:大口)?(?:地)?喘|"
                r"一句(?:话)?(?:都)?说不(?:完|全|下来)|上气不接下气|点头(?:样)?呼吸|一个字一个字|说不成句|"
                r"吃奶(?:吃)?(?:两|几|一)口就(?:停下来)?(?:喘|憋)|"
                r"(?:喘|呼吸)(?:气)?(?:的)?(?:声音)?(?:像)?(?:拉风箱|拉锯)|"
                r"说话(?:都)?(?:说不完整|说不出|断断续续)|(?:喘|憋)[得的]"
                + _C
                + r"{0,4}(?:说不出|说不了|不能说|发紫|发青)|喘(?:气)?(?:很|特别|非常)急|"
                r"(?:没有|没了|停止|停了)呼吸(?!困难|急促|费|快|异常|问题|不畅|声|道)|不(?:会)?呼吸(?!困难|急促|费|快|道)|"
                r"呼吸(?:停止|停了|暂停)|呼吸"
                + _C
                + r"{0,2}(?:一停一停|一顿一顿|时有时无)|没(?:有)?气了|喘[得的](?:很|特别|非常|好)?(?:厉害|快|急|凶)|"
                r"(?:停止|停了|暂停)" + _C + r"{0,2}呼吸|不喘气了|不出气了?|没有气息|"
                r"(?:每次|一直|总是)?(?:呼气|出气)(?:时|的时候)?(?:都)?" + _C + r"{0,2}(?:哼哼|哼|呻吟|吭吭)|"
                r"喉鸣|喘鸣|(?:吸气|吸)(?:时|的时候)"
                + _C
                + r"{0,8}(?:呼哧|嘶嘶|咝咝|拉锯|拉风箱|鸡叫|鸡鸣|打鸣|尖(?:尖)?的?(?:声|叫)|"
                r"哨(?:子)?(?:声|音)|吼声|怪声|声音(?:很)?(?:大|尖|响))|(?:喉咙|嗓子)(?:里)?"
                + _C
                + r"{0,4}(?:像拉锯|拉锯|拉风箱|"
                r"呼哧|嘶嘶|尖(?:尖)?的?(?:声|音))",
                unless=r"跑|运动|跳绳|爬楼|踢球|玩累|体育|打球|游泳|哭完|哭闹后|哭(?:的时候|时|起来|得)",
            ),
            T(
                r"(?:嘴唇|口唇|嘴巴|嘴|脸|脸色|面色|全身|皮肤|手指|指甲|嘴巴周围|嘴周|口周)" + _C + r"{0,4}"
                r"(?:发紫|青紫|紫了|发青|青了(?!一块)|发乌|乌青|发黑|紫绀|发绀|发子|(?:有点|有些|都|很|特别|略|微微)(?:紫|青|乌)|青青|紫紫|乌乌)|"
                r"发绀|紫绀",
                "!cold",
                unless=r"胎记|蒙古斑|磕|撞|摔|淤青|青了一块|涂|吃了(?:桑葚|蓝莓|紫)|哭(?:的时候|时|起来|得|完)",
            ),
        ),
        "any sign of laboured breathing, pauses in breathing or cyanosis",
        "孩子呼吸困难、呼吸暂停或口唇发紫，提示缺氧",
        first_aid="让孩子保持舒适的坐姿或侧卧，松开衣物，保持呼吸道通畅。",
    ),
    RedFlag(
        "choking",
        "异物卡喉/窒息",
        "choking or an inhaled foreign body",
        (
            T(
                r"窒息|卡(?:住|在)" + _C + r"{0,4}(?:喉咙|嗓子|气管|喉)|(?:喉咙|嗓子|气管)" + _C + r"{0,4}卡住|"
                r"(?:喉咙|嗓子|气管|食道)(?:里)?" + _C + r"{0,2}卡(?:了|着|住)|"
                r"(?:卡住|卡着)了?(?=[，,。.!！?？\s]|$)|噎住|噎着|呛住|异物" + _C + r"{0,4}(?:卡|呛|吸|堵)|"
                r"(?:吸|呛)进(?:了)?气管|(?:东西|异物)"
                + _C
                + r"{0,4}(?:进|掉进|吸进|呛进)(?:了)?气管|气管(?:里)?(?:有|进了)(?:东西|异物)|咳不出(?:声|来)|"
                r"(?:花生|坚果|瓜子|果冻|葡萄|糖果|硬币|豆子|小球|珠子|玩具|鱼刺|骨头)" + _C + r"{0,6}(?:卡|呛|噎|堵)"
            ),
        ),
        "choking that has not cleared, or a suspected inhaled object",
        "孩子可能有异物卡在喉咙或气管，会造成窒息",
        first_aid="孩子不能咳嗽、哭或说话时，立即做海姆立克急救（1岁以下用拍背加胸部按压）。",
    ),
    RedFlag(
        "drowning",
        "溺水",
        "drowning",
        (
            T(
                r"溺水|溺了|淹(?:着|到)?了|掉(?:进|到|在)?"
                + _C
                + r"{0,4}(?:水里|河里|湖里|海里|水池|泳池|游泳池|池塘|浴缸|"
                r"水缸|水桶|井里|鱼塘|水塘|鱼缸|浴盆|澡盆|水沟|水坑)|落水|沉(?:到)?水(?:里|底)|捞上来|救上来|"
                r"(?:"
                + _WATER
                + r")(?:里|中|边|底)?"
                + _C
                + r"{0,8}(?:呛(?:了)?(?:好多|很多|一大口|好几口|不少|大量)(?:的)?水|"
                r"沉(?:下去|到|了|下)|滑(?:进|下)去|栽|捞|淹|溺|卷走|冲走|头朝下|脸朝下|没过头|呛水|呛了水)|(?:浪|水)(?:给)?(?:卷走|冲走)"
            ),
            T(
                r"(?:脸|头|口鼻)(?:朝下)?(?:泡|埋|浸|闷|扎)(?:在|进)(?:了)?水里|脸朝下|(?:捞|救)(?:起来|回来|出来)|呛(?:了)?(?:好多|很多|一大口|好几口|不少|大量|一肚子)(?:的)?水",
                "water",
                unless=r"学游泳|游泳课|就好了|没事|吐泡泡|喜欢|憋气玩|潜水",
            ),
        ),
        "any submersion, even if the child seems well afterwards",
        "孩子发生了溺水，即使看起来恢复了，也可能在之后出现呼吸问题",
        first_aid="没有呼吸时立即开始心肺复苏。",
    ),
    RedFlag(
        "anaphylaxis",
        "严重过敏反应",
        "severe allergic reaction",
        (
            T(r"喉头水肿|过敏性休克|舌头" + _C + r"{0,3}肿"),
            T(r"(?:嘴唇|嘴巴|嘴|脸|面部)" + _C + r"{0,4}肿(?:起来|了|[得的])", "allergen"),
            T(_THROAT_SWELL, "allergen"),
            T(
                r"(?:全身|浑身|满身|身上到处|一身)" + _C + r"{0,4}(?:风团|疹子|荨麻疹|红疙瘩|疙瘩|包|红斑|红疹)",
                "allergen",
                "systemic",
            ),
            T(
                _THROAT_SWELL
                + r"[^。.!！?？\n]{0,12}(?:吞口水|咽口水|吞咽|咽东西|喝水)"
                + _C
                + r"{0,3}(?:都)?(?:困难|疼得|咽不下)|"
                r"(?:吞口水|咽口水|吞咽)" + _C + r"{0,3}(?:都)?困难[^。.!！?？\n]{0,12}" + _THROAT_SWELL
            ),
        ),
        "throat or tongue swelling, or lip/face swelling after a food, sting, medicine or injection",
        "可能是严重过敏反应，喉头水肿会很快阻塞呼吸道",
        first_aid="如有医生开的肾上腺素笔请立即使用。",
    ),
    RedFlag(
        "unresponsive",
        "叫不醒/意识改变",
        "unresponsive or very hard to wake",
        (
            T(
                r"(?:叫|喊|摇|拍|弄|推)(?:都|也)?(?:叫|喊|摇|拍|弄|推)?不醒|怎么(?:叫|喊)都不醒|很难叫醒|难以唤醒|"
                r"(?:叫|喊)" + _C + r"{0,4}(?:不怎么|不太|不大|很难)醒|叫(?:都)?不行了|"
                r"(?:叫|喊|摇|拍|弄|推|碰|捏|掐|挠)"
                + _C
                + r"{0,4}?(?:都|也|还)(?:叫|喊|摇|拍|弄|推)?不(?:醒|起来|睁眼)|"
                r"(?:喊|叫|摇|拍)" + _C + r"{0,5}才(?:醒|睁眼)|醒了(?:一会儿?)?(?:就|又)睡|刚醒(?:就|又)睡|醒不过来|"
                r"不认(?:识)?(?:人|我|妈妈|爸爸|家人|自己)|认不出(?:人|我|爸|妈|家人|来)|说胡话|胡言乱语|"
                r"反应(?:很|特别|非常)?迟钝|眼神(?:呆呆|涣散)|几乎不哭|哭不动|不会哭了|"
                r"哭声(?:越来越|很|特别|非常)?(?:弱|微弱|无力|尖|尖锐|刺耳|怪)|尖(?:声|着嗓子)(?:地)?(?:哭|叫)|尖叫(?:着)?(?:哭|大哭)|"
                r"哭[得的](?:很|特别)?尖|有气无力|像小猫(?:一样)?(?:叫|哭)|"
                r"逗(?:他|她|也|都)?"
                + _C
                + r"{0,3}(?:不笑|没反应|不理)|对(?:声音|人|外界|什么)"
                + _C
                + r"{0,3}没(?:有)?反应|"
                r"(?:眼神|两眼)(?:呆滞|发呆|发直|无神)|像没(?:有)?骨头|软(?:得)?(?:像|跟)(?:面条|面团|棉花|一滩泥)|"
                r"(?:整个人|全身|浑身|身子)(?:都)?软(?:了|掉了|下来)|"
                r"(?:叫|喊|拍|摇|碰|掐)"
                + _C
                + r"{0,5}(?:没|没有|毫无|不)(?:什么)?(?:反应|回应|应|答应|理人|搭理)|没(?:有)?(?:什么)?反应了|"
                r"毫无反应|(?:宝宝|孩子|娃|他|她|儿子|女儿|小孩)(?:突然|一下子|完全|都|也)?没(?:有)?(?:什么)?反应(?!了吗)|(?:叫|喊)"
                + _C
                + r"{0,4}(?:都|也)不理|"
                r"(?:对|跟)" + _C + r"{0,4}没(?:有)?反应|昏迷|(?:晕|昏)(?:了)?过去|(?:晕|昏)倒|晕厥|不省人事|不醒人事|"
                r"失去(?:了)?意识|意识(?:不清|模糊|丧失)|神志不清|精神(?:萎靡|极差|特别差|非常差|很差)|萎靡不振|瘫软|软塌塌|软趴趴|哭(?:都)?哭不出(?:声|来)|哭不出声|"
                r"软绵绵|全身(?:发)?软|一动不动|不会动了?|(?:眼神|两眼)(?:呆滞|发直)|反应(?:很|特别|非常|极)差|(?:叫|喊)"
                + _C
                + r"{0,4}只(?:会|是|知道)?哼|嗜睡|"
                r"昏睡",
                "!sound_sleep",
                unless=r"就(?:醒|起来)|几声就|熬夜|睡太晚|睡得晚|睡得(?:很)?(?:香|沉)|午睡|赖床|起床气|玩(?:的时候)?(?:一直)?尖叫",
            ),
            T(r"昏昏沉沉|昏沉|迷迷糊糊|烧糊涂|糊涂了|胡说八道", "fever", unless=r"睡得(?:很)?香|刚睡醒|睡醒"),
            T(
                r"不(?:怎么)?哭(?:也)?不(?:怎么)?闹|不哭不闹|不吃不喝|不爱动|不想动|不怎么动|没(?:有)?精神|蔫",
                "fever",
                "sleepy",
                unless=r"睡得(?:很)?香|吃了药|退烧药",
            ),
        ),
        "unresponsive, unconscious, or lethargic / very hard to wake",
        "孩子叫不醒、反应差或意识不清，可能是严重疾病的表现",
    ),
    RedFlag(
        "poor_perfusion",
        "面色灰白/皮肤发花/手脚冰凉",
        "pale, mottled or ashen skin; cold hands and feet with fever",
        (
            T(r"(?:脸色|面色|脸|皮肤|全身|嘴唇)" + _C + r"{0,3}(?:发灰|灰白|青灰|灰青|死灰|土灰|灰灰的|铁青)"),
            T(
                r"(?:脸色|面色|脸|小脸|皮肤|嘴唇|全身)"
                + _C
                + r"{0,3}(?:苍白|惨白|煞白|发白|白得(?:吓人|像纸)|没(?:有)?(?:一点)?血色)",
                "fever",
            ),
            T(
                r"(?:脸色|面色|脸|小脸|皮肤|嘴唇|全身)"
                + _C
                + r"{0,3}(?:苍白|惨白|煞白|白得(?:吓人|像纸)|没(?:有)?(?:一点)?血色)",
                "lethargy",
            ),
            T(
                r"发花|花斑|花花的|一块一块(?:的)?(?:紫|青|红白|发紫|发青|发花)|大理石",
                "fever",
                unless=r"花(?:露水|生|粉|菜|草|园|瓣|纹衣|衣服)",
            ),
            T(r"发花|花斑|一块一块(?:的)?(?:紫|青|发紫|发青)|大理石", "cold_limbs"),
            T(
                r"(?:手脚|手|脚|四肢|手指|脚丫)"
                + _C
                + r"{0,3}(?:冰凉|冰冷|发凉|冰)"
                + _C
                + r"{0,4}(?:发紫|发青|发花|发白)",
                "fever",
            ),
            T(r"(?:手脚|手|脚|四肢|手指|脚丫)" + _C + r"{0,3}(?:冰凉|冰冷|发凉|冰)", "fever", "lethargy"),
            T(r"心跳(?:得)?(?:很|特别|非常)?快|心率(?:很|特别)?(?:快|高)", "fever", "lethargy"),
        ),
        "pale / mottled / ashen / grey skin with fever or lethargy (NICE red); cold, blue or mottled hands and "
        "feet with fever; a fast heart with fever and lethargy (signs of sepsis or shock)",
        "孩子面色苍白发灰、皮肤发花或手脚冰凉发紫，同时发烧或精神差，可能是严重感染（脓毒症）或休克的表现",
    ),
    RedFlag(
        "seizure",
        "抽搐/惊厥",
        "convulsions",
        (
            T(
                r"抽搐|抽风|惊厥|抽起来|抽过去|在抽|又抽|(?<!哭得)(?<!哭的)一抽一抽|抽了(?![血烟骨个支根张管])|(?<![腿脚手])抽筋|"
                r"(?:四肢|手脚|全身|浑身|身体|胳膊|腿|手|脚)"
                + _C
                + r"{0,3}(?:抽动|(?:一直|不停地?|有节律地?|节律性地?)抖|乱抖|"
                r"抖个不停|僵直|僵硬|发硬|挺直)|"
                r"口吐白沫|牙关紧(?:闭|咬)|癫痫(?:又)?(?:发作|犯了)|犯(?:了)?癫痫|羊(?:角)?(?:癫|颠)疯|羊角风|"
                r"抽蓄|抽畜|惊撅|惊阙|一挺一挺|一下一下(?:地)?抽|抽(?:个)?(?:不停|停不下来)|一直(?:在)?抽(?!血|鼻|烟)|(?:四肢|手脚|全身|浑身|身体|身子|胳膊|腿)"
                + _C
                + r"{0,3}抖(?:得|个)(?:很|特别|非常)?"
                r"(?:厉害|不停|停不下来)|(?:牙|牙齿)(?:咬得)?(?:紧紧|死死)",
                unless=r"打嗝|抽血|抽鼻|抽屉|抽空|抽时间|抽纸|抽动症|惊跳|吓一跳|打冷战|冷得|哭得|抽泣",
            ),
            T(
                r"(?:嘴角|半边脸|一边脸|眼角|一只手|一侧)" + _C + r"{0,3}(?:抽动|一抽一抽|抽)",
                "!tic",
                unless=r"一下(?!子)|偶尔",
            ),
            T(
                r"翻白眼|白眼|眼睛(?:往)?上(?:翻|吊)|两眼上翻|眼球上翻|眼睛发直|两眼发直|眼神发直|两眼发呆|眼睛斜|斜着眼|两眼斜视",
                "convulsive",
                unless=r"睡觉|睡着|入睡|犯困|困了|调皮|故意|玩",
            ),
        ),
        "any convulsion now or just now (a past episode described as history does not count)",
        "孩子正在或刚刚发生抽搐（惊厥）",
        first_aid="抽搐时让孩子侧躺，清理口鼻分泌物，不要往嘴里塞任何东西，不要掐人中或按压肢体，记下抽搐持续的时间。",
    ),
    RedFlag(
        "poisoning",
        "误服药物/毒物/纽扣电池",
        "ingestion of poison, medicine, button battery or magnet",
        (
            T(r"(?:" + _INGEST + r")" + _C + r"{0,10}(?:" + _TOXIC + r")", unless=_NOT_SWALLOWED),
            T(
                r"(?:"
                + _TOXIC
                + r")"
                + _C
                + r"{0,8}(?:吞|吃|喝|咽|舔|咬)(?:了|下|进|掉|破)|(?:"
                + _TOXIC
                + r")[^。.!！?？\n]{0,14}(?:吞|咽)(?:了|下|进)|(?:"
                + _TOXIC
                + r")"
                + _C
                + r"{0,4}(?:放|塞)(?:进|到)?(?:嘴|口)里",
                unless=_NOT_SWALLOWED,
            ),
            T(
                r"(?:喂|吃|喝|给|拿|用)错(?:了)?药|药(?:喂|吃|给|拿)错|(?:"
                + _ELDERS
                + r")的"
                + _NOT_SUPPLEMENT
                + r"(?:药|"
                + _MEDICINE
                + r")[^。.!！?？\n]{0,12}(?:吃|喝|吞|喂|服|当)|(?:吃|喝|吞|喂|服)"
                + _C
                + r"{0,6}(?:"
                + _ELDERS
                + r")的"
                + _NOT_SUPPLEMENT
                + r"(?:药|"
                + _MEDICINE
                + r")"
            ),
            T(
                r"误吞|(?:吞|咽)(?:了|下|进)(?:去)?"
                + _C
                + r"{0,4}(?:硬币|珠子|钉子|针|别针|图钉|玻璃|刀片|戒指|耳环|发卡|螺丝|"
                r"小零件|零件|铁片)|(?:被)?(?:毒)?蛇咬|毒蛇|蝎子蛰"
            ),
            T(r"(?:误|偷|当糖|不小心|自己)" + _C + r"{0,6}(?:吃|喝|吞|服)" + _C + r"{0,10}(?:" + _MEDICINE + r")"),
            T(
                r"(?:误|偷|不小心|自己|好像|趁|翻出|拿到|够到|找到)"
                + _C
                + r"{0,8}(?:"
                + _MEDICINE
                + r")"
                + _C
                + r"{0,4}(?:吃|喝|吞)(?:了|掉|下)"
            ),
            T(
                r"(?:电池|磁铁|磁力珠|吸铁石|磁珠)" + _C + r"{0,8}(?:不见了|找不到了?|少了(?:一|两|几)?(?:颗|个|粒)?)",
                unless=r"找到了|在(?:地上|沙发|床)",
            ),
            T(r"(?:吃|喝|吞|喂)" + _C + r"{0,3}(?:" + _BULK + r")" + _C + r"{0,4}(?:" + _MEDICINE + r")"),
            T(
                r"(?:"
                + _BULK
                + r"|一大把|一堆|好多)"
                + _C
                + r"{0,4}(?:"
                + _MEDICINE
                + r")"
                + _C
                + r"{0,6}(?:都|全)?(?:吃|喝|吞|喂)(?:了|掉|光|完|下)"
            ),
            T(
                r"(?:"
                + _MEDICINE
                + r")[^。.!！?？\n]{0,16}(?:(?:吃|喂|喝|服)(?:多了|过量|超量|重复了)|(?:多|重复)(?:喂|吃|服)了|"
                r"(?:[两三四五六七八九十]|\d{1,2})倍)|(?:吃|喂|喝|服)(?:多了|过量|超量)[^。.!！?？\n]{0,10}(?:"
                + _MEDICINE
                + r")|"
                r"一天"
                + _C
                + r"{0,10}(?:吃|喂|服|喝)(?:了)?(?:[五六七八九十]|\d{2}|[5-9])次[^。.!！?？\n]{0,16}(?:"
                + _MEDICINE
                + r")|(?:"
                + _MEDICINE
                + r")[^。.!！?？\n]{0,16}一天"
                + _C
                + r"{0,6}(?:吃|喂|服|喝)(?:了)?(?:[五六七八九十]|\d{2}|[5-9])次"
            ),
            T(
                r"(?:"
                + _MEDICINE
                + r")"
                + _C
                + r"{0,10}(?:(?:吃|喝|喂|服)(?:多了|过量|超量|错了)|(?:吃|喝)了(?:"
                + _BULK
                + r"))"
            ),
            T(r"当(?:成)?(?:水|奶|饮料|糖|糖豆|零食|果汁)(?:喝|吃)(?:了|掉|下)"),
            T(
                r"(?:吃|嚼|吞|舔|啃)(?:了)?"
                + _C
                + r"{0,4}(?:野外|外面|路边|树上|公园|小区|山上|花园|院子)(?:里)?(?:摘|采|捡)(?:的|来的)"
                + _C
                + r"{0,3}(?:果子|果实|浆果|红果|野果|叶子|花(?!生|菜|椰)|草(?!莓)|蘑菇|菌子|种子)|野果|浆果"
            ),
            T(r"剂量(?:错|多|超)|(?:双倍|两倍|三倍|过量|超量)" + _C + r"{0,4}(?:药|剂量)|(?<!铅)中毒|煤气|一氧化碳"),
        ),
        "any swallowed medicine not prescribed for the child (or an overdose), household chemical, pesticide, "
        "button battery or magnets, toxic plant or mushroom; carbon-monoxide exposure",
        "孩子可能误服了药物、毒物、纽扣电池或磁铁等（或中毒），有的在早期没有症状，但可能造成严重损伤",
        action="poison",
    ),
    RedFlag(
        "self_harm",
        "自伤/自杀风险",
        "self-harm or suicide risk",
        (
            T(
                r"自杀|轻生|想死|不想活|活着没(?:意思|意义)|活着(?:太|好)累|死了算了|去死|结束(?:自己的)?生命|割腕|自残|自伤|"
                r"伤害自己|(?:划|割|划伤|割伤|刺|扎)(?:了)?自己|(?:刀|刀片|小刀|剪刀)"
                + _C
                + r"{0,4}(?:划|割)"
                + _C
                + r"{0,4}(?:手腕|胳膊|手臂|自己)|"
                r"(?:划|割)(?:手|手腕|胳膊|手臂)|(?:在|往)(?:手臂|胳膊|手腕|腿)上" + _C + r"{0,6}(?:划|割)|"
                r"跳楼|从楼上跳|遗书|(?:手臂|胳膊|手腕|大腿)"
                + _C
                + r"{0,8}(?:刀割|刀划|刀痕|割痕|划痕|割伤|划伤|割的|划的)|"
                r"(?:刀割|刀划|刀痕|割痕|划痕)" + _C + r"{0,6}(?:手臂|胳膊|手腕)"
            ),
        ),
        "any talk of wanting to die, a plan, or self-injury",
        "孩子有自伤或轻生的想法或行为",
        action="crisis",
    ),
    RedFlag(
        "major_trauma",
        "高处坠落/车祸/触电",
        "fall from height, road accident, electric shock",
        (
            T(
                r"从"
                + _C
                + r"{0,6}(?:[二两三四五六七八九十\d]+楼|[二两三四五六七八九十\d]+层|阳台|窗户|窗台|楼顶|楼上|"
                r"高处|高楼|[2-9二两三四五六七八九]\s*米)"
                + _C
                + r"{0,6}(?:摔|掉|跌|坠|滚|跳)|坠楼|被"
                + _C
                + r"{0,3}车"
                + _C
                + r"{0,2}(?:撞|碾|压)|车祸|触电|电击|被电(?:到|了|了一下)|电线"
                + _S
                + r"{0,8}(?:焦|发黑|烧)|"
                r"(?:刀|剪刀|玻璃|钢筋|钉子|筷子)"
                + _C
                + r"{0,4}(?:扎进|插进|刺进|戳进)|骨头(?:都)?(?:露|戳)(?:出来|在外)|"
                r"(?:手|腿|胳膊)" + _C + r"{0,3}(?:变形|扭曲|断了)|"
                r"(?:眼睛|眼球|眼珠)" + _C + r"{0,4}(?:被)?" + _C + r"{0,4}(?:扎|戳|刺|炸)(?:伤|到|了|进|破)|"
                r"(?:鞭炮|烟花|爆竹|炮仗)" + _C + r"{0,6}(?:炸伤|炸到|炸了|崩到|崩伤)|"
                r"(?:" + _TOXIC + r")" + _C + r"{0,6}(?:溅|进|弄|喷)(?:到|进)?(?:了)?(?:眼睛|眼里)"
            ),
        ),
        "falls from a first floor or higher / more than 2 m, vehicle accidents, electric shock, "
        "penetrating or open injuries",
        "孩子受到高处坠落、车祸、触电或穿透性的严重外伤",
        first_aid="不要随意搬动可能伤到脖子或脊柱的孩子；触电时先切断电源再接触孩子。",
    ),
    RedFlag(
        "animal_bite",
        "狗咬伤面部/颈部或深伤口",
        "dog bite to the face or neck, or a deep bite",
        (
            T(
                r"(?:狗|犬|猫|动物)" + _C + r"{0,6}咬" + _S + r"{0,8}(?:脸|面部|头|脖子|颈|眼|嘴|鼻子|耳朵)|"
                r"(?:脸|面部|头|脖子|颈部?|眼睛|嘴|鼻子|耳朵)" + _C + r"{0,6}(?:被)?(?:狗|犬)" + _C + r"{0,2}咬|"
                r"(?:狗|犬)" + _C + r"{0,4}咬" + _S + r"{0,10}(?:很深|撕|一块肉|血流|好多血|很多血|见骨|露骨|缝针)"
            ),
        ),
        "a dog (or other animal) bite to the face, head or neck, or a deep / heavily bleeding bite",
        "孩子被狗咬伤了面部、头颈部或伤口很深，需要急诊处理伤口并评估狂犬病和破伤风的预防",
        first_aid="用肥皂水和流动清水冲洗伤口15分钟，用干净纱布压住止血。",
    ),
    RedFlag(
        "suspected_abuse",
        "疑似虐待或摇晃伤",
        "suspected non-accidental injury",
        (
            T(
                r"(?:不明原因|莫名其妙|不知道怎么(?:弄|来|搞)|说不清(?:怎么)?(?:弄|来))"
                + _C
                + r"{0,6}(?:淤青|瘀青|青紫|淤血|瘀斑|伤|骨折|烫)|(?:淤青|瘀青|青紫|伤)"
                + _S
                + r"{0,20}(?:不知道怎么(?:弄|来|搞)的|说不清|不明原因)|"
                r"(?:保姆|阿姨|月嫂|育儿嫂|老师|继父|继母|后妈|后爸)" + _C + r"{0,6}(?:打|掐|虐待|摇晃|踢|烫|捂)|"
                r"虐待|虐童|(?:使劲|用力|猛烈|剧烈)(?:地)?摇晃|摇晃婴儿|摇晃(?:过|了)?(?:宝宝|婴儿)|"
                r"烟头烫的?" + _C + r"{0,4}(?:疤|伤|印)"
            ),
        ),
        "unexplained bruises or injuries in a baby, injuries a carer cannot explain, a baby shaken hard",
        "孩子身上有说不清原因的伤，或可能被摇晃、被伤害，需要医生尽快检查（婴儿被摇晃可能造成脑损伤）",
        first_aid="如果怀疑孩子被人伤害，也可以拨打110报警。",
    ),
    RedFlag(
        "head_injury",
        "严重头部外伤",
        "serious head injury",
        (
            T(
                r"(?:吐|呕吐)"
                + _C
                + r"{0,3}(?:好几|几|两|三|四|五|多|\d)(?:次|回|遍|下)|犯困|迷糊|重影|看不清|视物模糊|头(?:很|特别|非常|剧烈)(?:疼|痛)|"
                r"反复(?:呕)?吐|一直吐|吐个不停|喷射|"
                r"昏迷|晕过去|昏过去|失去意识|意识不清|叫不醒|想睡|嗜睡|一直睡|没精神|精神(?:差|不好)|没反应|抽|"
                r"(?:晕|昏)(?:了)?(?:一下|几秒|一会儿?|过去)|失去知觉|没(?:有)?意识|"
                r"(?:耳朵|鼻子)"
                + _C
                + r"{0,4}(?:流血|出血|流水|流出|血水|清水)|走路(?:不稳|摇晃|摇摇晃晃|歪)|说话不清|瞳孔|"
                r"头(?:很)?(?:疼|痛)[得的](?:厉害|受不了)|剧烈头痛|(?:头|颅骨|头骨|脑袋|后脑勺?|额头)"
                + _C
                + r"{0,6}(?:凹(?:陷|下去|进去|了)|(?:摔|磕|撞|砸)(?:出)?(?:了)?(?:一个)?坑)|认不出|"
                r"不怎么动|一动不动|也不哭|不哭了|蔫|软(?:绵绵|塌塌|趴趴)",
                "head_trauma",
            ),
        ),
        "a head injury followed by repeated vomiting, drowsiness, loss of consciousness, seizure, "
        "bleeding / clear fluid from ear or nose, unsteady walking or a dent in the skull",
        "头部受伤后出现反复呕吐、嗜睡、意识改变等，提示可能有颅内损伤",
    ),
    RedFlag(
        "bleeding",
        "出血不止",
        "bleeding that will not stop",
        (
            T(
                r"(?:血|流血|出血)"
                + _C
                + r"{0,10}止不住|(?:血|鼻血)"
                + _C
                + r"{0,10}(?:还|都|一直)(?:不停|没停|停不下来)|"
                r"流(?:了)?(?:半个|一个|几个|两个)(?:多)?(?:小时|钟头)(?:了)?(?:还|都)?(?:不停|没停|在流)|止不住(?:地)?(?:流|出|冒)血|血流不止|流血不止|大出血|喷血|"
                r"血(?:一直|不停)(?:往外)?(?:冒|流|涌|喷)|流了(?:很多|好多|一大滩|一地)(?:的)?血|"
                r"(?:伤口|口子)" + _C + r"{0,6}(?:很深|见骨|露骨)"
            ),
        ),
        "bleeding that does not stop with 10–20 minutes of firm pressure, or a deep wound",
        "孩子出血止不住或伤口很深",
        first_aid="用干净的纱布或毛巾持续用力压住出血处，不要频繁松开查看。",
    ),
    RedFlag(
        "burns",
        "大面积或严重烧烫伤",
        "large or serious burns",
        (
            T(
                r"(?:"
                + _BURN
                + r")[^。.!！?？;；\n]{0,16}(?P<sym>"
                + _BURN_SEVERE
                + r")|(?P<sym2>"
                + _BURN_SEVERE
                + r")[^。.!！?？;；\n]{0,8}(?:"
                + _BURN
                + r")"
            ),
            T(_SITE_BLISTER, "burn", unless=r"小泡|一个泡|一点|蚊子|手足口|湿疹|疱疹"),
        ),
        "burns that are large, blistered over a big area, deep (white/black), or blistered on the face, neck, "
        "genitals or buttocks",
        "烧烫伤面积大、部位特殊（面部、会阴等）或较深",
        first_aid="用流动的凉水冲洗烫伤处15到20分钟，不要涂牙膏、酱油，不要弄破水泡。",
    ),
    RedFlag(
        "rash_with_fever",
        "发热伴压之不褪色皮疹",
        "non-blanching rash with fever",
        (
            T(
                r"瘀点|瘀斑|淤点|淤斑|紫斑|紫点|出血点|出血斑|紫癜|(?:紫红色|紫色|暗红色|紫黑色)"
                + _C
                + r"{0,4}(?:点|斑|疹)|"
                r"(?:按|压|摁)"
                + _C
                + r"{0,4}不(?:褪|退|消)|不褪色|玻璃杯"
                + _C
                + r"{0,8}(?:不褪|不消|还在|看得见|也不)|"
                r"皮肤(?:发花|花斑)|大理石(?:样|纹)|(?:红点|红点点|小点|疹子|斑点|点点)"
                + _C
                + r"{0,6}(?:按|压|摁)"
                + _C
                + r"{0,4}(?:不(?:下去|掉|变)|还在|也在|看得见)|(?:按|压|摁)"
                + _C
                + r"{0,6}(?:还(?:是)?(?:在|看得(?:见|到)|有)|也(?:在|看得(?:见|到)))|(?:杯子|杯)"
                + _C
                + r"{0,6}(?:压|按)"
                + _C
                + r"{0,4}(?:也|还)(?:看得见|在|不)|紫(?:色|红色)?(?:的)?(?:点点|小点|斑块|斑点)",
                "fever",
            ),
        ),
        "petechiae / purpura / a rash that does not fade under pressure, or mottled skin, with fever",
        "发烧同时出现压之不褪色的瘀点瘀斑或皮肤发花，需警惕脑膜炎球菌等严重感染",
    ),
    RedFlag(
        "meningism",
        "颈项强直/前囟膨隆",
        "stiff neck with fever, bulging fontanelle",
        (
            T(
                r"(?:脖子|颈部|脖颈|颈项|后颈)" + _C + r"{0,5}(?:硬|僵|强直|不能弯|弯不下|低不下|不能低)|颈(?:项)?强直|"
                r"低头" + _C + r"{0,4}(?:困难|碰不到|很疼|疼|痛)|下巴碰不到胸|不能低头|低不了头|头低不下(?:去|来)|"
                r"脖子(?:很|特别)?(?:疼|痛)" + _C + r"{0,4}(?:不能|没法)(?:低|动|转)",
                "fever",
            ),
            T(
                r"(?:囟门|前囟|囟|头顶(?:那块|上)?软(?:的|软的)?(?:地方|那块))"
                + _C
                + r"{0,4}(?:鼓|股|隆起|膨出|凸|突起|胀|顶起来)",
                unless=r"哭(?:的时候|时)|一哭|平了|不哭|跳",
            ),
        ),
        "neck stiffness with fever; a bulging fontanelle at any temperature",
        "发烧伴脖子发硬或囟门鼓起，需警惕脑膜炎",
    ),
    RedFlag(
        "neuro_deficit",
        "突发神经功能异常",
        "sudden neurological deficit",
        (
            T(r"走路(?:不稳|摇晃|摇摇晃晃|歪|打晃)|站不稳|看东西(?:重影|模糊|有两个)|看(?:东西)?重影", "headache"),
            T(
                r"嘴歪|口角歪斜|(?:一侧|一边|半边|左边|右边)"
                + _C
                + r"{0,4}(?:手|脚|胳膊|腿|身体|身子|脸)"
                + _C
                + r"{0,4}(?:没劲|无力|不能动|动不了|麻)|突然"
                + _C
                + r"{0,3}(?:说话不清|说不出话|看不见|看不清|走不了路|"
                r"不会走路)|剧烈头痛|头痛欲裂|从来没(?:有)?(?:这么|那么)(?:疼|痛)过|"
                r"(?:突然|忽然)" + _C + r"{0,3}头(?:疼|痛)" + _C + r"{0,6}(?:吐|呕|受不了|炸|要裂)"
            ),
        ),
        "sudden facial droop, one-sided weakness, loss of speech or vision, or a sudden severe headache",
        "孩子突然出现口角歪斜、单侧肢体无力、说话不清或剧烈头痛",
    ),
    RedFlag(
        "infant_fever",
        "小婴儿发热",
        "fever in a young infant",
        (),
        "age ≤ 3 months and T ≥ 38.0 °C (or 'fever' with no number); age above 3 and below 6 months and T ≥ 39.0 °C",
        "3个月及以下的宝宝发烧（≥38℃），或3到6个月的宝宝体温≥39℃，可能是严重感染，需要医生马上评估",
    ),
    RedFlag(
        "low_temperature",
        "体温过低",
        "low body temperature",
        (),
        "age ≤ 3 months and T ≤ 35.5 °C; any age and T ≤ 35.0 °C",
        "孩子体温过低，可能是严重感染或循环不好的表现",
        first_aid="给孩子保暖（包裹、贴身抱着），尽快就医。",
    ),
    RedFlag(
        "dehydration",
        "重度脱水",
        "severe dehydration",
        (
            T(
                r"(?:哭|哭的时候|哭时)" + _C + r"{0,3}(?:没有|没|无|不流|不出)(?:眼)?泪|哭不出(?:眼)?泪|"
                r"(?:眼窝|眼眶|眼睛)" + _C + r"{0,3}(?:凹陷|凹下去|陷下去|塌下去|凹进去)|"
                r"(?:囟门|前囟|囟)"
                + _C
                + r"{0,3}(?:凹陷|凹下去|陷下去|塌下去|凹进去)|皮肤"
                + _C
                + r"{0,3}(?:弹性差|捏起来)|(?:捏|提|揪|掐)(?:起)?"
                + _C
                + r"{0,6}(?:弹不回|回不去|回弹(?:很|特别)?慢|"
                r"半天(?:才)?(?:回|平|弹|下去|恢复)|不回去|慢慢(?:才)?(?:回|平))|皮肤(?:没有|没)弹性"
            ),
            T(
                r"(?:眼窝|眼眶|眼睛|囟门|前囟|囟)"
                + _C
                + r"{0,3}(?:凹|陷|塌)|(?:嘴唇|嘴巴|嘴|舌头)"
                + _C
                + r"{0,3}(?:干裂|干得起皮|很干|特别干|干干的)|哭"
                + _C
                + r"{0,3}(?:眼泪很少|没什么眼泪)|(?:眼泪|泪)(?:都|也)?(?:没有|没)|没(?:有)?眼泪|干得(?:很|厉害|起皮)",
                "gi_loss_repeated",
            ),
            T(_DRY, "gi_loss"),
            T(
                r"(?:重度|严重|中度)?脱水(?:了|得(?:很|厉害)|很严重)|(?:重度|严重)脱水",
                unless=r"轻度|会不会|怕|预防|防止|避免",
            ),
            T(_GI_LOSS, "lethargy"),
            T(
                r"尿(?:很|特别|非常)?少|小便(?:很|特别|非常)?少|尿量"
                + _C
                + r"{0,2}少|不怎么尿|几乎没尿|(?:水|奶)?(?:都)?喝不进|"
                r"喝(?:什么|啥|水|奶|一口)(?:就|都)吐|喝水都吐|一喝就吐",
                "gi_loss",
                "lethargy",
            ),
            T(r"(?:吐|呕吐|拉肚子|腹泻|拉)" + _C + r"{0,3}止不住"),
        ),
        f"no urine for ≥ {NO_URINE_HOURS:g} h; crying without tears; sunken eyes or fontanelle; "
        "or vomiting/diarrhoea with lethargy and little urine / unable to keep fluids down",
        "孩子有重度脱水的表现（长时间无尿、哭时无泪、眼窝或囟门凹陷、精神差）",
        first_aid="路上可小口多次喂口服补液盐，但不要因此耽误就医。",
    ),
    RedFlag(
        "infant_not_feeding",
        "不能喝水吃奶/吃什么吐什么",
        "not able to drink or feed, or vomiting everything",
        (
            T(_VOMITS_ALL, unless=r"吐奶|一点|吐了一口|只吐一口|漾奶|溢奶|说饱了|不爱喝"),
            T(
                r"不吃奶|拒奶|没(?:有)?(?:吃|喝)(?:过)?奶|不喝奶|奶(?:也|都)不(?:吃|喝)|吃奶(?:很|特别|非常)?(?:差|少)|吃不进(?:奶)?|吸不动|"
                r"不肯吃|喂不进|吃奶没力气|不吃不喝|什么都不(?:吃|喝)|(?:水|奶)都不喝",
                "lethargy",
            ),
        ),
        "vomiting everything, or unable / refusing to drink or breastfeed together with lethargy "
        "(WHO general danger signs)",
        "孩子吃什么吐什么、喝不进水，或拒奶同时精神差，是危险信号",
    ),
    RedFlag(
        "bilious_vomiting",
        "呕吐胆汁/呕血/喷射状呕吐",
        "green-bile, bloody or projectile vomiting",
        (
            T(
                r"(?:吐|呕吐物|吐出来的|吐的)"
                + _C
                + r"{0,6}(?:绿色|绿水|墨绿|黄绿|胆汁|草绿|发绿|绿的|绿绿的)|吐血|呕血|"
                r"吐(?:出)?(?:的)?(?:是)?(?:咖啡色|咖啡渣|血块|鲜血)|喷射(?:状|性|样)?(?:地)?(?:呕)?吐|"
                r"吐(?:了|出)?(?:好多|很多|一口|一大口|大量|不少)(?:的)?血(?!丝)|吐(?:出来)?(?:的)?(?:全)?是(?:绿|血)|吐绿水"
            ),
        ),
        "any green (bilious) vomit, blood or coffee-ground vomit, projectile vomiting",
        "呕吐物是绿色胆汁、血性或喷射状呕吐，提示肠梗阻、消化道出血或颅内压增高",
    ),
    RedFlag(
        "intussusception",
        "疑似肠套叠",
        "suspected intussusception",
        (
            T(
                r"果酱(?:样|色|一样|状|似)|(?:像|是|跟)果酱|(?:大便|便便|屎|拉的|拉出来的?)"
                + _C
                + r"{0,6}(?:像|跟|是)"
                + _C
                + r"{0,3}(?:果冻|草莓酱|番茄酱|西瓜汁)"
            ),
            T(r"(?:大便|便|拉)" + _C + r"{0,8}(?:带血(?!丝)|有血(?!丝)|血便|是血|血水)|便血|血便|拉血", "colicky"),
        ),
        "redcurrant-jelly stool, or blood in stool with colicky pain / bouts of inconsolable crying",
        "阵发性哭闹或腹痛伴血便（果酱样大便），需警惕肠套叠",
    ),
    RedFlag(
        "acute_abdomen",
        "疑似阑尾炎等急腹症",
        "suspected appendicitis / acute abdomen",
        (
            T(
                _RLQ
                + _C
                + r"{0,8}(?P<sym>疼|痛)|(?:转移|移|转|跑)到(?:了)?右(?:下|边|侧)|(?P<sym2>疼|痛)"
                + _C
                + r"{0,4}(?:在)?"
                + _RLQ,
                "!transient",
            ),
            T(
                r"(?:肚子|腹部|腹)"
                + _C
                + r"{0,4}(?:疼|痛)[得的]"
                + _C
                + r"{0,3}(?:打滚|打混|直不起腰|弯着腰|不能走|不敢动|"
                r"受不了|大哭|满头大汗|缩成一团|蜷|尖叫)|"
                r"(?:肚子|腹部)" + _C + r"{0,3}(?:硬得像|硬邦邦|像木板)|剧烈腹痛"
            ),
            T(
                r"走路(?:都)?(?:弯(?:着)?腰|弓着|不敢直)|不敢(?:直腰|直起腰|走路)|直不起腰|"
                r"(?:走路|咳嗽|跳|颠)(?:时|的时候)?(?:更|就|会更)(?:疼|痛)|一(?:走|跳|颠|咳)(?:就)?(?:更)?(?:疼|痛)",
                "belly_pain",
            ),
            T(
                r"肚子"
                + _C
                + r"{0,2}(?:胀|鼓)(?:得)?(?:像|跟)(?:鼓|皮球|气球)|肚子(?:又)?(?:胀|鼓)(?:得)?(?:很|特别|老|好)?(?:大|硬)",
                "gi_loss_repeated",
            ),
        ),
        "right-lower-quadrant pain that persists (not a brief pain that passes), or severe abdominal pain",
        "持续的右下腹痛或剧烈腹痛，需警惕阑尾炎等需要手术的急腹症",
        first_aid="就医前先不要吃喝东西，也不要自行服用止痛药。",
    ),
    RedFlag(
        "testicular_torsion",
        "疑似睾丸扭转",
        "suspected testicular torsion",
        (
            T(r"(?:睾丸|阴囊|蛋蛋|卵蛋)" + _C + r"{0,6}(?P<sym>剧痛|疼|痛|发紫|发青|发黑)"),
            T(
                r"(?:下面|下体|裆部|裤裆|私处|小鸡鸡下面|鸡鸡下面)"
                + _C
                + r"{0,4}(?:一边|一侧|一个)?"
                + _C
                + r"{0,2}(?P<sym>剧痛|疼|痛|肿)",
                "boy",
            ),
        ),
        "any sudden pain in the testicle or scrotum (torsion must be treated within about 6 hours)",
        "阴囊或睾丸突然疼痛，需警惕睾丸扭转，6小时内处理才能保住睾丸",
    ),
    RedFlag(
        "severe_jaundice",
        "新生儿重度黄疸",
        "severe neonatal jaundice",
        (
            T(_PALMS_YELLOW, "neonate"),
            T(_PALMS_YELLOW, "young_infant"),
            T(r"(?:黄疸|黄胆)" + _C + r"{0,6}(?:越来越|加重|很重|特别重|很高)|越来越黄", "young_infant"),
            T(PALE_STOOL, "neonate"),
            T(PALE_STOOL, "jaundice"),
            T(r"(?:" + JAUNDICE + r")", "young_infant", "lethargy"),
            T(r"(?:" + JAUNDICE + r")", "neonate", "lethargy"),
        ),
        f"jaundice in the first day of life; jaundice still visible at {PROLONGED_JAUNDICE_DAYS:g} days or older "
        "(under 3 months); jaundice reaching palms and soles, worsening, or in a sleepy / poorly feeding baby; "
        "pale (chalky) stools",
        "新生儿黄疸出现得太早、持续太久、蔓延到手心脚心、持续加重、伴精神差吃奶差，或大便发白，需要尽快就医",
    ),
    RedFlag(
        "high_fever",
        "高热≥40℃",
        "temperature of 40 °C or more",
        (),
        f"T ≥ {HIGH_FEVER_C:g} °C at any age (not counted once the fever is reported gone)",
        "体温达到或超过40℃，需要医生尽快评估",
    ),
    RedFlag(
        "prolonged_fever",
        "发热≥5天",
        "fever for 5 days or more",
        (),
        f"fever lasting ≥ {PROLONGED_FEVER_DAYS:g} days at any age",
        "发烧已持续5天或以上，需警惕川崎病等，应尽快到医院检查",
    ),
)

FLAGS_BY_ID: dict[str, RedFlag] = {f.id: f for f in RED_FLAGS}
