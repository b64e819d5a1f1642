"""Team-written phrasing for turning knowledge-graph diseases into task records (see ``kg_tasks``).

Every template is a ``str.format`` string over the fields of :func:`pedgpt.data.corpus.kg_tasks.fields_of`:
``name desc cause symptoms people checks treat_way treat_detail drugs departments dept prevent nursing
complications`` (lists joined with "、"; ``dept`` is the first department). Evidence-based diagnosis
templates add ``age child case_symptoms duration``; the diagnosis answer adds ``reasons`` and ``differential``.
Appending a template to a list changes which template some records draw, so it changes their ids.
"""

from __future__ import annotations

#: Disease fields an intent needs; the intent is skipped for a disease where any of them is empty.
INTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "desc": ("desc",),
    "cause": ("cause",),
    "symptoms": ("symptoms",),
    "susceptible": ("susceptible_people",),
    "checks": ("checks",),
    "complications": ("complications",),
    "prevent": ("prevent",),
    "care": ("nursing",),
    "treatment": ("treat_detail",),
    "drug": ("common_drug",),
    "department": ("departments",),
    "plan": ("treat_detail", "departments", "nursing"),
    "case": ("symptoms", "departments"),
    "case_followup": ("symptoms", "checks", "departments"),
}
MEDKQA_INTENTS = ("desc", "cause", "symptoms", "susceptible", "checks", "complications", "prevent", "care")
TRERECOM_INTENTS = ("treatment", "drug", "department", "plan")
EVIDIAG_INTENTS = ("case", "case_followup")
PREFERENCE_INTENTS = (
    "desc",
    "cause",
    "symptoms",
    "checks",
    "complications",
    "prevent",
    "care",
    "treatment",
    "drug",
    "department",
    "case",
)
INTENT_TASK = {
    **{i: "medkqa" for i in MEDKQA_INTENTS},
    **{i: "trerecom" for i in TRERECOM_INTENTS},
    **{i: "evidiag" for i in EVIDIAG_INTENTS},
}

QUESTIONS: dict[str, list[str]] = {
    "desc": [
        "{name}是什么病？",
        "能给我讲讲什么是{name}吗？",
        "孩子被诊断为{name}，这是一种怎样的疾病？",
        "请简单介绍一下儿童{name}。",
    ],
    "cause": [
        "{name}是什么原因引起的？",
        "孩子为什么会得{name}？",
        "儿童{name}的病因有哪些？",
        "我想知道{name}是怎么得上的。",
    ],
    "symptoms": [
        "{name}有哪些症状？",
        "孩子得了{name}会有什么表现？",
        "怎么判断孩子是不是得了{name}，常见症状是什么？",
        "儿童{name}的典型表现有哪些？",
    ],
    "susceptible": ["哪些孩子容易得{name}？", "{name}多发生在什么年龄段的儿童？", "{name}的易感人群是哪些？"],
    "checks": ["怀疑{name}需要做哪些检查？", "孩子可能是{name}，去医院一般查什么？", "诊断{name}要做什么检查？"],
    "complications": [
        "{name}会引起哪些并发症？",
        "{name}不及时治疗会有什么后果？",
        "孩子得了{name}，需要警惕哪些并发症？",
    ],
    "prevent": ["怎样预防{name}？", "家长平时该怎么做才能让孩子少得{name}？", "{name}有什么预防办法？"],
    "care": [
        "孩子得了{name}，在家应该怎么护理？",
        "{name}患儿的家庭护理要注意什么？",
        "{name}期间家长要注意哪些事情？",
    ],
    "treatment": [
        "{name}怎么治疗？",
        "孩子得了{name}，一般怎么治？",
        "{name}的治疗原则是什么？",
        "儿童{name}有哪些治疗方法？",
    ],
    "drug": ["{name}常用哪些药？", "孩子得了{name}可以吃什么药？", "治疗{name}一般会用到什么药物？"],
    "department": ["孩子得了{name}应该挂哪个科？", "{name}去医院看哪个科室？", "怀疑孩子是{name}，该去什么科就诊？"],
    "plan": [
        "孩子确诊{name}了，请给一个完整的治疗和护理建议。",
        "{name}的治疗方案和日常护理应该怎么安排？",
        "医生说是{name}，接下来治疗、用药和护理都要注意什么？",
    ],
}

ANSWERS: dict[str, list[str]] = {
    "desc": [
        "{desc}常见表现包括{symptoms}。",
        "{desc}{people}",
        "简单来说，{desc}如果怀疑孩子患病，可以到{dept}就诊。",
    ],
    "cause": ["{cause}", "{name}的病因：{cause}{people}", "引起{name}的原因主要是：{cause}"],
    "symptoms": [
        "{name}的常见症状有{symptoms}。{desc}",
        "孩子得了{name}，通常会出现{symptoms}等表现。如果症状明显或持续加重，请及时到{dept}就诊。",
        "典型表现包括：{symptoms}。不同孩子表现轻重不一，最终诊断需要医生检查后确定。",
    ],
    "susceptible": ["{people}", "关于易感人群：{people}这些孩子的家长要格外留意预防。", "{name}的易感人群：{people}"],
    "checks": [
        "怀疑{name}时，医生常会安排{checks}等检查，再结合症状和体格检查作出判断。",
        "常用的检查有：{checks}。具体做哪些项目由医生根据孩子的情况决定。",
        "诊断{name}通常需要做{checks}。",
    ],
    "complications": [
        "{name}可能引起的并发症有{complications}。{nursing}",
        "需要警惕的并发症包括：{complications}。及时规范治疗可以明显降低这些风险。",
        "如果病情没有得到及时控制，{name}可能并发{complications}。",
    ],
    "prevent": [
        "{prevent}",
        "预防{name}可以这样做：{prevent}",
        "{prevent}另外，孩子一旦出现可疑症状，要尽早到{dept}就诊。",
    ],
    "care": ["{nursing}", "家庭护理要点：{nursing}", "{name}患儿在家护理时，{nursing}"],
    "treatment": [
        "{name}的治疗方式主要有{treat_way}。{treat_detail}",
        "{treat_detail}",
        "一般采用{treat_way}。{treat_detail}具体方案请由医生根据孩子的情况制定。",
    ],
    "drug": [
        "{name}常用的药物有{drugs}，但是否用药、用哪种以及剂量都要遵医嘱，不要自行给孩子用药。",
        "常见用药包括：{drugs}。请务必在医生指导下使用，剂量遵医嘱按体重计算。",
        "治疗{name}时医生可能会用到{drugs}等药物。儿童用药请遵医嘱，切勿自行购买服用。",
    ],
    "department": [
        "建议挂{departments}。",
        "{name}一般到{departments}就诊，病情紧急时请直接去急诊。",
        "可以先看{dept}，医生会根据情况决定是否需要转诊到{departments}中的其他科室。",
    ],
    "plan": [
        "治疗方面：{treat_detail}就诊科室：{departments}。用药：{drugs}等需遵医嘱使用。护理方面：{nursing}",
        "一、治疗：{treat_way}。{treat_detail}\n二、用药：{drugs}，具体请遵医嘱。\n三、就诊：{departments}。\n四、护理：{nursing}",
    ],
}

# --- EviDiag ------------------------------------------------------------------------------------------
DURATIONS = ["一天", "两天", "三天", "大约一周", "半天", "四五天"]
CASE_QUESTIONS = [
    "{child}，{age}，最近{duration}出现{case_symptoms}，请问可能是什么病？",
    "我家{child}{age}了，这{duration}一直{case_symptoms}，想请您帮忙分析一下是什么问题。",
    "{age}的{child}，主要表现是{case_symptoms}，持续了{duration}。这是什么病？",
    "病例：患儿{age}，{case_symptoms}，病程{duration}。请给出最可能的诊断和依据。",
]
CASE_ANSWERS = [
    "根据描述，最可能的诊断是{name}。\n依据：{reasons}\n鉴别诊断：{differential}\n建议尽快到{dept}就诊，可完善{checks}以明确诊断。",
    "考虑{name}的可能性最大。{reasons}\n需要与以下疾病区分：{differential}\n最终诊断请以{dept}医生的面诊和检查为准。",
    "初步判断为{name}。\n理由：{reasons}\n其他可能：{differential}\n建议带孩子到{dept}就诊，必要时检查{checks}。",
]
FOLLOWUP_FIRST = [
    "从症状看需要考虑{name}，但也要和{rivals}区分。建议先做{checks}，有结果后我再帮您分析。",
    "目前{name}的可能性较大，同时不能排除{rivals}。请到{dept}完善{checks}等检查。",
]
FOLLOWUP_SECOND = [
    "{checks_done}的结果出来了，医生说符合{name}的表现。为什么不是其他病？接下来要注意什么？",
    "做完了{checks_done}，报告支持{name}。请再解释一下诊断依据和后续处理。",
]
FOLLOWUP_ANSWERS = [
    "结合症状和{checks_done}的结果，可以诊断为{name}。\n依据：{reasons}\n排除其他疾病：{differential}\n后续处理：{treat_detail}",
    "检查结果与{name}相符，诊断基本明确。{reasons}\n鉴别：{differential}\n接下来：{treat_detail}{nursing}",
]
#: Fields ``kg_tasks._case`` fills for every case (``checks_done`` from the checks, which ``case_followup``
#: requires), so a case template never lacks them.
CASE_FIELDS = ("age", "child", "duration", "case_symptoms", "rivals", "checks_done", "differential", "reasons")
REASON = "{name}的典型表现包括{symptoms}，与孩子的{matched}相符；{people}"
DIFF_UNIQUE = "{rival}虽然也可以出现{shared}，但通常伴有{unique}，本例没有提到，因此可能性较小。"
DIFF_PEOPLE = "{rival}也会出现{shared}，但它的典型表现与本例不完全吻合，且{rival_people}"
NO_RIVAL = "暂无需要特别鉴别的常见疾病，但仍需医生面诊确认。"

#: The template lists an intent's records draw from, in drawing order. An intent is skipped for a disease
#: when one of them has no template whose fields are all non-empty (e.g. ``plan`` without drugs).
INTENT_TEMPLATES: dict[str, tuple[list[str], ...]] = {
    **{i: (QUESTIONS[i], ANSWERS[i]) for i in QUESTIONS},
    "case": (CASE_QUESTIONS, CASE_ANSWERS),
    "case_followup": (CASE_QUESTIONS, FOLLOWUP_FIRST, FOLLOWUP_SECOND, FOLLOWUP_ANSWERS),
}

# --- preference pairs ---------------------------------------------------------------------------------
OPENERS = [
    "看到孩子不舒服，家长一定很着急，我来详细说明一下。",
    "理解您的担心，下面把{name}相关的要点整理给您。",
    "别太焦虑，{name}在儿童中并不少见，了解清楚就能更好地照顾孩子。",
    "谢谢您的信任，关于这个问题我分几点来回答。",
    "孩子生病时家长最辛苦了，我们一起把情况弄清楚。",
]
POINTS: dict[str, list[str]] = {
    "desc": ["疾病概况：{desc}", "常见表现：{symptoms}。", "多见人群：{people}"],
    "cause": ["主要原因：{cause}", "容易患病的孩子：{people}"],
    "symptoms": ["常见症状：{symptoms}。", "疾病特点：{desc}", "可能的并发症：{complications}。"],
    "checks": ["常用检查：{checks}。", "医生会结合症状、体格检查和检查结果综合判断，不必每项都做。"],
    "complications": ["可能的并发症：{complications}。", "家庭观察要点：{nursing}"],
    "prevent": ["预防措施：{prevent}", "高危人群：{people}"],
    "care": ["护理要点：{nursing}", "治疗配合：{treat_detail}"],
    "treatment": ["治疗方式：{treat_way}。", "具体说明：{treat_detail}", "就诊科室：{departments}。"],
    "drug": [
        "常用药物：{drugs}。",
        "用药原则：是否用药和具体剂量都要遵医嘱，儿童剂量通常按体重计算，不要自行加量或换药。",
        "治疗思路：{treat_detail}",
    ],
    "department": ["就诊科室：{departments}。", "病情说明：{desc}", "可能需要的检查：{checks}。"],
}
CLOSERS = [
    "如果孩子出现精神萎靡、持续高热、呼吸困难或尿量明显减少等情况，请立即到{dept}或急诊就医。",
    "以上内容供参考，不能代替面诊；症状加重或持续不缓解时，请及时带孩子到{dept}就诊。",
    "请密切观察孩子的精神、进食和睡眠，一旦有异常变化，尽早到{dept}找医生评估。",
]
#: Rejected-answer styles: terse, incomplete, dismissive, overconfident or evasive.
REJECTED: dict[str, list[str]] = {
    "one_liner": ["{gist}。", "就是{gist}。", "{gist}，就这样。"],
    "dismissive": [
        "小孩子都这样，没事，多喝水多睡觉就好了。",
        "没什么大不了的，多喝水，过几天自己就好了，不用去医院。",
        "别想太多，{name}没事的，多喝热水就行。",
    ],
    "overconfident": [
        "这个不用检查，直接去药店买点消炎药吃几天，肯定能好。",
        "输液最快，直接去诊所打几天吊瓶就好了。",
        "大人吃的药减半给孩子吃就行，不用看医生。",
    ],
    "evasive": [
        "这个不好说，每个孩子都不一样，你自己看着办吧。",
        "网上都有，自己查一下就知道了。",
        "说不清楚，等严重了再说。",
    ],
}

# --- continued pre-training paragraphs ----------------------------------------------------------------
CPT_PARAGRAPHS = [
    "{name}\n{desc}病因方面，{cause}",
    "{name}的临床表现\n患儿常见{symptoms}等表现。{people}若病情进展，可能出现{complications}等并发症。",
    "{name}的诊断\n临床上常结合病史、体格检查以及{checks}等检查进行诊断，并注意与症状相似的疾病相鉴别。",
    "{name}的治疗\n治疗方式包括{treat_way}。{treat_detail}常用药物有{drugs}，儿童用药应遵医嘱。就诊科室：{departments}。",
    "{name}的预防与护理\n预防：{prevent}护理：{nursing}",
    "关于{name}的家长须知\n{name}多见于以下人群：{people}家长如发现孩子出现{symptoms}，应及时到{dept}就诊，不要自行用药。",
]

# --- general instructions (not drawn from the KG): everyday and general-health questions --------------
GENERAL_QA: list[tuple[str, str]] = [
    (
        "你好，请介绍一下你自己。",
        "您好！我是一个面向儿童健康的智能助手，可以解答儿童常见疾病、日常护理和健康知识方面的问题。我的回答仅供参考，不能代替医生面诊，遇到紧急情况请及时就医。",
    ),
    ("请用一句话解释什么是光合作用。", "光合作用是绿色植物利用光能，把二氧化碳和水转化为有机物并释放氧气的过程。"),
    ("把“早睡早起身体好”翻译成英文。", "Going to bed early and getting up early keeps you healthy."),
    ("计算37乘以12等于多少。", "37×12=444。可以拆成37×10=370，再加上37×2=74，合计444。"),
    ("写一首关于春天的四句短诗。", "春风轻拂柳丝长，\n燕子归来筑新梁。\n田间麦苗青如染，\n孩童放学笑声扬。"),
    (
        "给我三个提高学习专注力的小建议。",
        "1. 把任务拆成二十到三十分钟的小段，中间短暂休息。\n2. 学习时把手机放到另一个房间，减少干扰。\n3. 保证充足睡眠和适量运动，大脑状态会更好。",
    ),
    (
        "孩子每天应该睡多长时间？",
        "一般来说，1至2岁的幼儿每天约需11至14小时（含午睡），3至5岁约10至13小时，6至12岁约9至12小时，青少年约8至10小时。如果孩子长期入睡困难、睡觉打鼾或白天总是犯困，可以咨询医生。",
    ),
    (
        "正确洗手有哪些步骤？",
        "先用流动水打湿双手并取适量洗手液，然后依次揉搓掌心、手背、指缝、指背、拇指、指尖和手腕，总共揉搓不少于20秒，最后用流动水冲净并用干净毛巾或纸巾擦干。",
    ),
    (
        "孩子每天看屏幕多长时间比较合适？",
        "建议2岁以下尽量不接触电子屏幕，2至5岁每天累计不超过1小时，学龄儿童的娱乐性屏幕时间也最好控制在每天2小时以内，并且每隔二三十分钟起身远眺休息一下。",
    ),
    (
        "孩子流鼻血时应该怎么处理？",
        "让孩子坐下、身体稍微前倾，用拇指和食指捏住两侧鼻翼持续压迫约10分钟，不要仰头，以免血流进喉咙。如果压迫15到20分钟仍止不住、出血量大或反复发生，应及时就医。",
    ),
    (
        "给上学的孩子准备早餐有什么建议？",
        "一顿好的早餐最好包含三类食物：主食（如面包、粥、馒头）、优质蛋白（如鸡蛋、牛奶、豆浆或少量肉类）以及一些蔬菜或水果。尽量少用油炸食品和含糖饮料代替早餐。",
    ),
    (
        "怎样培养孩子的阅读习惯？",
        "可以每天固定一个亲子阅读时间，让孩子自己挑选感兴趣的书，家长以身作则多读书，并在读完后和孩子聊聊故事内容。不要把阅读变成任务或惩罚。",
    ),
    ("请把“把门关上。”改写得更礼貌一些。", "麻烦您帮忙把门关上，好吗？谢谢！"),
    ("列举太阳系的八大行星。", "按离太阳由近到远依次是：水星、金星、地球、火星、木星、土星、天王星和海王星。"),
    (
        "用三句话说明为什么要多喝水。",
        "水参与身体几乎所有的代谢过程。充足的饮水有助于调节体温、排出代谢废物。孩子活动量大、出汗多，更需要及时补充白开水。",
    ),
    (
        "帮我写一张给幼儿园老师的请假条，孩子发烧需要请假一天。",
        "王老师您好：\n我的孩子今天早上发烧，需要在家休息并观察，特此请假一天。孩子退热且精神好转后会按时返园，如有需要我会及时与您沟通。谢谢您的理解！\n家长 敬上",
    ),
    (
        "解释一下成语“守株待兔”的意思。",
        "这个成语出自一个寓言：一个农夫偶然捡到撞死在树桩上的兔子，从此天天守着树桩等兔子。它比喻死守狭隘的经验、不知变通，或者心存侥幸、不愿主动努力。",
    ),
    (
        "一个长方形长8厘米、宽5厘米，它的面积和周长各是多少？",
        "面积=长×宽=8×5=40平方厘米；周长=(长+宽)×2=(8+5)×2=26厘米。",
    ),
    (
        "儿童乘车安全需要注意什么？",
        "12岁以下的孩子应坐在后排，并根据年龄和体重使用合适的儿童安全座椅；不要把孩子单独留在车内；行车中不要让孩子把头和手伸出窗外。",
    ),
    (
        "怎样帮助孩子克服看牙的恐惧？",
        "可以提前用绘本或游戏让孩子了解看牙的过程，选择对儿童友好的牙科诊所，避免用“打针”“拔牙”来吓唬孩子，就诊后及时表扬孩子的勇敢。",
    ),
    (
        "推荐几种适合亲子一起做的户外活动。",
        "可以一起骑自行车、放风筝、去公园观察植物和昆虫、进行短途徒步，或者在空地上玩跳绳和踢球。活动时注意防晒、补水和安全。",
    ),
    (
        "怎么判断孩子喝的水够不够？",
        "比较简单的方法是看尿液：尿色淡黄、排尿次数正常，一般说明饮水充足；如果尿色深黄、尿量少，或者嘴唇干燥，就需要多补充水分。",
    ),
    (
        "夏天如何预防孩子中暑？",
        "避免在一天中最热的时段长时间户外活动，穿浅色透气的衣服，及时补充水分，不要把孩子留在密闭的车内。如果孩子出现高热、头晕、呕吐或精神差，要立即转移到阴凉处并就医。",
    ),
    (
        "孩子挑食怎么办？",
        "可以多次少量地让孩子尝试新食物，变换烹饪方式，让孩子参与买菜和做饭，家长自己也不挑食。不要强迫或用零食奖励吃饭，保持轻松的进餐氛围。",
    ),
    (
        "请写一段简短的家长会自我介绍。",
        "各位老师、家长好！我是小明的妈妈，平时在一家公司做财务工作。很高兴有机会和大家交流，希望我们一起配合老师，帮助孩子们快乐成长。",
    ),
    (
        "什么是疫苗？它为什么能预防疾病？",
        "疫苗是用减毒、灭活的病原体或其部分成分制成的生物制品。接种后可以让身体的免疫系统提前“认识”病原体并产生保护力，以后真正遇到时就能更快地把它清除。",
    ),
    (
        "请给出一个家庭常备急救箱的清单。",
        "可以准备：体温计、无菌纱布和绷带、创可贴、医用胶带、碘伏、生理盐水、冰袋、剪刀和镊子、口服补液盐，以及适合儿童的退热药（如对乙酰氨基酚或布洛芬，按说明书或遵医嘱使用）。药品要定期检查有效期，并放在孩子拿不到的地方。",
    ),
    ("水在标准大气压下的沸点是多少？", "在一个标准大气压下，纯水的沸点是100摄氏度。"),
    ("把苹果、香蕉、橙子按拼音首字母排序。", "按拼音首字母排序为：橙子（c）、苹果（p）、香蕉（x）。"),
    (
        "怎样和孩子聊情绪？",
        "先帮孩子说出情绪的名字，比如“你现在很生气”，接纳孩子的感受，再一起想想可以怎么做。家长也可以分享自己处理情绪的方法，给孩子做示范。",
    ),
    (
        "孩子多大可以开始学游泳？",
        "一般4岁左右可以开始比较系统地学习游泳，更小的孩子可以在家长陪同下做一些亲水活动。不论多大，在水中都必须有成人全程看护。",
    ),
]
