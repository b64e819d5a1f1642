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
must also be present somewhere in the conversation, ``"!name"`` one that must be absent. The table is
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


def T(pattern: str, *needs: str) -> Trigger:
    return Trigger(pattern, tuple(needs))


# --- shared fragments ---------------------------------------------------------------------------------
_C = r"[^，,。.!！?？;；\n]"  # one character inside a clause
_FEVER_WORD = r"发烧|发热|高烧|高热|低烧|烧到|烧了|在烧|还烧|又烧|烧[得的]|烧起来|体温高|发高烧|烧一直|烧不退"
_LETHARGY = (
    r"精神(?:差|不好|很差|萎靡|不振|不济)|没(?:有)?精神|没力气|没劲|蔫|嗜睡|一直睡|总是睡|老是睡|昏睡|"
    r"软绵绵|全身软|瘫软|无力|反应(?:差|慢|迟钝)|不哭不闹|哭声(?:很|特别)?(?:弱|小)|哼哼|不怎么醒|不爱动|"
    r"叫不醒|没反应"
)
_INGEST = (
    r"误食|误服|误吞|误喝|误吃|吞了|吞下|吞进|吞|咽了|咽下|吃了|吃下|吃进|喝了|喝下|喝进|舔了|偷吃|偷喝|"
    r"啃了|嚼了|咬破|当糖吃|塞进嘴|放进嘴|吞食|服用了|服下|喝掉|吃掉|喝过|吃过|吞过"
)
_TOXIC = (
    r"纽扣电池|电池|磁铁|磁珠|磁力珠|吸铁石|巴克球|农药|杀虫剂|除草剂|百草枯|敌敌畏|老鼠药|鼠药|灭鼠|蟑螂药|"
    r"驱蚊液|蚊香液|清洁剂|洗洁精|洗衣液|洗衣粉|洗衣凝珠|洗衣球|凝珠|消毒液|消毒水|84|漂白|洁厕|管道疏通|疏通剂|"
    r"除垢剂|酒精|白酒|酒(?!酿|心|窝|店)|发芽的土豆|夹竹桃|滴水观音|汽油|煤油|柴油|油漆|稀料|洗甲水|指甲油|樟脑丸|卫生球|干燥剂|水银|有毒|毒蘑菇|野蘑菇|"
    r"野生菌|烟头|烟油|电子烟|尼古丁|精油|降压药|安眠药|避孕药|降糖药|抗抑郁|精神类药|心脏病药|镇静药|铁剂|铁片"
)
_MEDICINE = (
    r"药|药片|药丸|胶囊|糖浆|退烧药|感冒药|维生素|钙片|布洛芬|对乙酰氨基酚|泰诺林|美林|阿司匹林|"
    r"止咳药|止咳糖浆|抗生素|头孢"
)
_RLQ = (
    r"(?:右下腹|右下肚|右(?:边|侧)?(?:的)?(?:肚子|小肚子|腹部?)(?:的)?(?:下面|下边|下方|下部|靠下)|"
    r"(?:肚子|腹部?)(?:的)?右(?:边|侧)?(?:的)?(?:下面|下边|下方|下部|下))"
)
_THROAT_SWELL = r"(?:喉咙|嗓子|喉头|喉)" + _C + r"{0,4}(?:肿|发紧|紧|发堵|堵)"
_PALMS_YELLOW = (
    r"(?:手心|脚心|脚底|手掌|脚掌)"
    + _C
    + r"{0,3}(?:都)?(?:黄|发黄)|(?:黄疸|黄)"
    + _C
    + r"{0,4}(?:到|蔓延到|延伸到|到了)"
    + _C
    + r"{0,2}(?:手心|脚心|脚底|手掌|脚掌)"
)
_ELDERS = r"大人|爸爸|妈妈|爷爷|奶奶|外公|外婆|姥姥|姥爷|老人|哥哥|姐姐"
_BULK = r"一整|整瓶|大半瓶|半瓶|一瓶|一板|一盒|一把|好几片|好几粒|好几颗|十几|几十|好多片|好多粒|全部"
_BURN = r"烫伤|烧伤|灼伤|烫到|烫了|被" + _C + r"{0,5}烫|被火|着火|开水|热油|热汤|热水|热粥|火锅"
_BURN_SEVERE = (
    r"大面积|一大片|大片|整个|整条|整只|全身|半身|后背|前胸|胸口|(?:大|很多|好多|一片|一大片|一堆)(?:的)?"
    r"(?:水泡|水疱|泡)|皮(?:都)?(?:掉|脱|烂)|发白|发黑|焦|(?:脸|面部|头皮|脖子|会阴|屁股|生殖器|小鸡鸡)"
    r"[^。.!！?？;；\n]{0,8}(?:起泡|水泡|水疱|起了泡|破皮)"
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
    "allergic": r"过敏|风团|荨麻疹|蛰|打(?:了|完)?针|疫苗",
    "cold": r"冻[得的]|冷[得的]|太冷|天冷|着凉|游泳后|从水里出来",
    "neonate": r"黄疸|新生儿|出生|满月|月子",
    "allergen": (r"过敏|吃了|吃完|喝了|打(?:了|完)?针|疫苗|输液|蛰|叮|花生|坚果|海鲜|虾|蟹|芒果|鸡蛋|牛奶|药"),
    "gi_loss": r"吐|呕|泻|拉肚子|拉稀|水样便|拉了" + _C + r"{0,3}次",
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
                + r"{0,2}(?:煽动|扇动|一扇一扇|一张一张|一张一合)|吸气(?:时|的时候)"
                + _C
                + r"{0,8}(?:凹|陷)|呼吸(?:很|特别|非常)?急促|"
                r"呼吸(?:很|特别|非常)快|"
                r"说话(?:都)?(?:说不完整|说不出|断断续续)|(?:喘|憋)[得的]"
                + _C
                + r"{0,4}(?:说不出话|说不了话|不能说话|发紫|发青)|喘(?:气)?(?:很|特别|非常)急|"
                r"(?:没有|没了|停止|停了)呼吸(?!困难|急促|费|快|异常|问题|不畅|声|道)|不(?:会)?呼吸(?!困难|急促|费|快|道)|"
                r"呼吸(?:停止|停了|暂停)|呼吸"
                + _C
                + r"{0,2}(?:一停一停|一顿一顿|时有时无)|没(?:有)?气了|喘[得的](?:很|特别|非常)?厉害"
            ),
            T(
                r"(?:嘴唇|口唇|嘴巴|嘴|脸|脸色|面色|全身|皮肤|手指|指甲)" + _C + r"{0,4}"
                r"(?:发紫|青紫|紫了|发青|青了(?!一块)|发乌|乌青|发黑|紫绀|发绀)|发绀|紫绀",
                "!cold",
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
                r"水缸|水桶|井里|鱼塘|水塘)|落水|沉(?:到)?水(?:里|底)|捞上来|救上来"
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
            T(_THROAT_SWELL, "allergic"),
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
                r"(?:叫|喊)" + _C + r"{0,4}(?:不怎么|不太|不大|很难)醒|"
                r"(?:叫|喊|拍|摇|碰|掐)"
                + _C
                + r"{0,5}(?:没|没有|毫无|不)(?:什么)?(?:反应|回应|应|答应|理人|搭理)|没(?:有)?(?:什么)?反应了|"
                r"毫无反应|(?:宝宝|孩子|娃|他|她|儿子|女儿|小孩)(?:突然|一下子|完全|都|也)?没(?:有)?(?:什么)?反应(?!了吗)|(?:叫|喊)"
                + _C
                + r"{0,4}(?:都|也)不理|"
                r"(?:对|跟)" + _C + r"{0,4}没(?:有)?反应|昏迷|(?:晕|昏)(?:了)?过去|(?:晕|昏)倒|晕厥|不省人事|"
                r"失去(?:了)?意识|意识(?:不清|模糊|丧失)|神志不清|精神(?:萎靡|极差|特别差|非常差|很差)|萎靡不振|瘫软|软塌塌|软趴趴|哭(?:都)?哭不出(?:声|来)|哭不出声|"
                r"软绵绵|全身(?:发)?软|一动不动|不会动了?|(?:眼神|两眼)(?:呆滞|发直)|反应(?:很|特别|非常|极)差|(?:叫|喊)"
                + _C
                + r"{0,4}只(?:会|是|知道)?哼|嗜睡|"
                r"昏睡"
            ),
        ),
        "unresponsive, unconscious, or lethargic / very hard to wake",
        "孩子叫不醒、反应差或意识不清，可能是严重疾病的表现",
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
                r"口吐白沫|牙关紧(?:闭|咬)|癫痫(?:又)?(?:发作|犯了)|犯(?:了)?癫痫|羊(?:角)?(?:癫|颠)疯|羊角风"
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
            T(r"(?:" + _INGEST + r")" + _C + r"{0,10}(?:" + _TOXIC + r")"),
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
                + r"{0,4}(?:放|塞)(?:进|到)?(?:嘴|口)里"
            ),
            T(
                r"(?:喂|吃|喝|给|拿|用)错(?:了)?药|药(?:喂|吃|给|拿)错|(?:"
                + _ELDERS
                + r")的(?:药|"
                + _MEDICINE
                + r")[^。.!！?？\n]{0,12}(?:吃|喝|吞|喂|服|当)|(?:吃|喝|吞|喂|服)"
                + _C
                + r"{0,6}(?:"
                + _ELDERS
                + r")的(?:药|"
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
            T(r"(?:吃|喝|吞|喂)" + _C + r"{0,3}(?:" + _BULK + r")" + _C + r"{0,4}(?:" + _MEDICINE + r")"),
            T(
                r"(?:"
                + _MEDICINE
                + r")"
                + _C
                + r"{0,10}(?:(?:吃|喝|喂|服)(?:多了|过量|超量|错了)|(?:吃|喝)了(?:"
                + _BULK
                + r"))"
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
                + r"{0,2}(?:撞|碾|压)|车祸|触电|电击|被电(?:到|了)|"
                r"(?:刀|剪刀|玻璃|钢筋|钉子|筷子)"
                + _C
                + r"{0,4}(?:扎进|插进|刺进|戳进)|骨头(?:都)?(?:露|戳)(?:出来|在外)|"
                r"(?:手|腿|胳膊)" + _C + r"{0,3}(?:变形|扭曲|断了)"
            ),
        ),
        "falls from a first floor or higher / more than 2 m, vehicle accidents, electric shock, "
        "penetrating or open injuries",
        "孩子受到高处坠落、车祸、触电或穿透性的严重外伤",
        first_aid="不要随意搬动可能伤到脖子或脊柱的孩子；触电时先切断电源再接触孩子。",
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
                r"(?:耳朵|鼻子)"
                + _C
                + r"{0,4}(?:流血|出血|流水|流出|血水|清水)|走路(?:不稳|摇晃|摇摇晃晃|歪)|说话不清|瞳孔|"
                r"头(?:很)?(?:疼|痛)[得的](?:厉害|受不了)|剧烈头痛|(?:头|颅骨)" + _C + r"{0,3}凹(?:陷|下去)|认不出",
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
                r"(?:血|流血|出血)" + _C + r"{0,10}止不住|止不住(?:地)?(?:流|出|冒)血|血流不止|流血不止|大出血|喷血|"
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
                r"皮肤(?:发花|花斑)|大理石(?:样|纹)",
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
                r"低头" + _C + r"{0,4}(?:困难|碰不到|很疼|疼|痛)|下巴碰不到胸",
                "fever",
            ),
            T(r"(?:囟门|前囟|囟)" + _C + r"{0,4}(?:鼓|隆起|膨出|凸起|突起|胀)"),
        ),
        "neck stiffness with fever; a bulging fontanelle at any temperature",
        "发烧伴脖子发硬或囟门鼓起，需警惕脑膜炎",
    ),
    RedFlag(
        "neuro_deficit",
        "突发神经功能异常",
        "sudden neurological deficit",
        (
            T(
                r"嘴歪|口角歪斜|(?:一侧|一边|半边|左边|右边)"
                + _C
                + r"{0,4}(?:手|脚|胳膊|腿|身体|身子|脸)"
                + _C
                + r"{0,4}(?:没劲|无力|不能动|动不了|麻)|突然"
                + _C
                + r"{0,3}(?:说话不清|说不出话|看不见|看不清|走不了路|"
                r"不会走路)|剧烈头痛|头痛欲裂"
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
                + r"{0,3}(?:弹性差|捏起来)"
            ),
            T(
                r"尿(?:很|特别|非常)?少|尿量" + _C + r"{0,2}少|不怎么尿|几乎没尿|(?:水|奶)?(?:都)?喝不进|"
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
        "拒奶伴精神差",
        "not feeding and lethargic",
        (
            T(
                r"不吃奶|拒奶|没(?:有)?(?:吃|喝)(?:过)?奶|不喝奶|奶(?:也|都)不(?:吃|喝)|吃奶(?:很|特别|非常)?(?:差|少)|吃不进(?:奶)?|吸不动|"
                r"不肯吃|喂不进|吃奶没力气|不吃不喝|什么都不(?:吃|喝)|(?:水|奶)都不喝",
                "lethargy",
            ),
        ),
        "unable or refusing to drink / breastfeed together with lethargy (a WHO general danger sign)",
        "孩子拒奶或不能喝东西，同时精神差，是危险信号",
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
                r"吐(?:出)?(?:的)?(?:是)?(?:咖啡色|咖啡渣|血块|鲜血)|喷射(?:状|性|样)?(?:地)?(?:呕)?吐"
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
            T(r"果酱(?:样|色|一样)"),
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
                + r"{0,8}(?P<sym>疼|痛)|(?:转移|移)到(?:了)?右下|(?P<sym2>疼|痛)"
                + _C
                + r"{0,4}(?:在)?"
                + _RLQ,
                "!transient",
            ),
            T(
                r"(?:肚子|腹部|腹)" + _C + r"{0,4}(?:疼|痛)[得的](?:打滚|直不起腰|满地打滚|不能走|不敢动|受不了|大哭)|"
                r"(?:肚子|腹部)" + _C + r"{0,3}(?:硬得像|硬邦邦|像木板)|剧烈腹痛"
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
        (T(r"(?:睾丸|阴囊|蛋蛋|卵蛋)" + _C + r"{0,6}(?P<sym>剧痛|疼|痛|发紫|发青|发黑)"),),
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
            T(r"黄疸" + _C + r"{0,6}(?:越来越|加重|很重|特别重|很高)|越来越黄", "young_infant"),
        ),
        "jaundice reaching palms and soles, or worsening jaundice in a young infant",
        "新生儿黄疸蔓延到手心脚心或持续加重，需要尽快治疗",
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
