"""Word lists of the sentiment scorer (Chinese and English, e-commerce customer service).

Weights run from -2 (strongly negative) to +2. A weight of 0 blocks a longer
word from being read as its parts (快递 is a courier, not "fast"; 没问题 is
"no problem"). Negators flip the next sentiment word within a short reach;
intensifiers multiply it.
"""

from __future__ import annotations

from typing import Final

# fmt: off
ZH_POSITIVE: Final[dict[str, float]] = {
    "好": 1.0, "很好": 1.5, "挺好": 1.2, "不错": 1.2, "满意": 1.5, "喜欢": 1.2, "赞": 1.5,
    "点赞": 1.5, "好评": 1.5, "推荐": 1.0, "快": 0.6, "及时": 1.0, "耐心": 1.2, "专业": 1.0,
    "热情": 1.0, "周到": 1.2, "划算": 1.0, "实惠": 1.0, "值得": 1.0, "完美": 2.0, "棒": 1.5,
    "给力": 1.5, "优秀": 1.5, "感谢": 1.0, "谢谢": 0.8, "贴心": 1.2, "靠谱": 1.2, "放心": 1.0,
    "惊喜": 1.5, "开心": 1.2, "高兴": 1.2, "舒服": 1.0, "好用": 1.2, "好吃": 1.2, "正品": 1.0,
    "回购": 1.2, "超值": 1.5, "满分": 2.0, "五星": 1.5, "顺利": 1.0, "解决了": 1.2, "没问题": 0.8,
    "物超所值": 2.0, "神速": 1.5, "清楚": 0.6, "好看": 1.2, "漂亮": 1.2, "值": 0.8, "爱了": 1.5,
    "稳": 0.8, "点个赞": 1.5, "好评如潮": 2.0, "挺满意": 1.5, "很满意": 2.0, "认真": 1.0,
}
ZH_NEGATIVE: Final[dict[str, float]] = {
    "差": -1.5, "太差": -2.0, "垃圾": -2.0, "失望": -1.5, "骗子": -2.0, "骗": -1.5, "假货": -2.0,
    "投诉": -1.5, "慢": -1.0, "坑": -1.5, "烂": -1.5, "恶心": -2.0, "破": -0.8, "坏": -1.2,
    "坏了": -1.5, "退货": -0.6, "退款": -0.5, "不满": -1.5, "差评": -2.0, "生气": -1.5,
    "愤怒": -2.0,
    "无语": -1.2, "糟糕": -1.5, "问题": -0.6, "故障": -1.2, "崩溃": -1.5, "卡顿": -1.0,
    "延迟": -0.8, "丢件": -1.5, "破损": -1.5, "漏发": -1.2, "错发": -1.2, "敷衍": -1.5,
    "推诿": -1.5, "欺骗": -2.0, "欺诈": -2.0, "虚假": -1.5, "维权": -1.5, "曝光": -1.2,
    "避雷": -1.8, "后悔": -1.5, "难用": -1.5, "难吃": -1.5, "不值": -1.2, "黑心": -2.0,
    "霸王条款": -2.0, "没人理": -1.5, "没人回": -1.5, "不回复": -1.2, "打不通": -1.5,
    "失联": -1.5, "质量差": -2.0, "上当": -1.8, "气死": -2.0, "无良": -2.0, "辣鸡": -2.0,
    "坑爹": -2.0, "吐槽": -1.0, "翻车": -1.5, "暴雷": -2.0, "跑路": -2.0, "好慢": -1.5,
    "好差": -2.0, "好贵": -1.0, "贵": -0.6, "不好": -1.2, "不行": -1.2, "太慢": -1.5,
    "态度差": -2.0, "态度恶劣": -2.0, "不靠谱": -1.5, "假的": -1.5, "举报": -1.5, "315": -1.5,
    "消协": -1.2, "退钱": -1.2, "还钱": -1.2, "烦": -1.0, "麻烦": -0.6, "拖": -0.8, "拖延": -1.2,
    "等了": -0.6, "一直等": -1.2, "没收到": -1.2, "未收到": -1.2, "收不到": -1.2, "不发货": -1.5,
    "缺货": -0.6, "瑕疵": -1.0, "发霉": -2.0, "过期": -1.5, "掉色": -1.0, "异味": -1.2,
    "智商税": -1.8, "割韭菜": -1.8, "套路": -1.2, "忽悠": -1.5, "不退": -1.2, "拒绝退款": -2.0,
    "崩了": -1.8, "挂了": -1.5, "登不上": -1.5, "闪退": -1.5, "乱扣费": -2.0, "扣费": -0.8,
}
ZH_NEUTRAL_BLOCKERS: Final[dict[str, float]] = {
    "快递": 0.0, "快点": -0.3, "好像": 0.0, "好不容易": -0.3, "只好": 0.0, "正好": 0.0,
    "问一下": 0.0, "请问": 0.0, "好的": 0.2, "差不多": 0.0, "不差钱": 0.0, "值班": 0.0,
    "破解": 0.0, "坏账": 0.0, "还好": 0.3, "好奇": 0.0, "最好": 0.0, "差价": 0.0, "不客气": 0.3,
}
ZH_NEGATORS: Final = (
    "不", "没", "没有", "别", "无", "未", "非", "从不", "从没", "毫无", "并不", "不是", "不太",
    "不怎么",
)
ZH_INTENSIFIERS: Final[dict[str, float]] = {
    "非常": 1.8, "太": 1.6, "很": 1.4, "特别": 1.6, "超": 1.5, "超级": 1.8, "极其": 2.0,
    "十分": 1.6, "真": 1.3, "真的": 1.4, "最": 1.6, "巨": 1.6, "贼": 1.5, "相当": 1.4,
    "实在": 1.4, "简直": 1.6, "极": 1.8, "蛮": 1.2, "挺": 1.2, "好": 1.3,
}

EN_POSITIVE: Final[dict[str, float]] = {
    "good": 1.0, "great": 1.5, "excellent": 2.0, "love": 1.5, "loved": 1.5, "like": 0.6,
    "happy": 1.2, "fast": 0.8, "quick": 0.8, "quickly": 0.8, "helpful": 1.2, "thanks": 0.8,
    "thank": 0.8, "perfect": 2.0, "awesome": 1.8, "amazing": 1.8, "recommend": 1.2,
    "satisfied": 1.5, "nice": 1.0, "smooth": 1.0, "friendly": 1.2, "reliable": 1.2, "best": 1.5,
    "wonderful": 1.8, "resolved": 1.0, "easy": 0.8, "polite": 1.0, "patient": 1.0,
    "professional": 1.0, "fantastic": 1.8, "worth": 0.8, "pleased": 1.2, "impressed": 1.2,
}
EN_NEGATIVE: Final[dict[str, float]] = {
    "bad": -1.2, "terrible": -2.0, "awful": -2.0, "worst": -2.0, "hate": -1.8, "slow": -1.0,
    "broken": -1.5, "fake": -1.8, "scam": -2.0, "fraud": -2.0, "angry": -1.5,
    "disappointed": -1.5, "disappointing": -1.5, "poor": -1.2, "useless": -1.8, "rude": -1.8,
    "delayed": -1.0, "late": -0.8, "lost": -1.0, "damaged": -1.5, "complaint": -1.2,
    "complain": -1.2, "ripoff": -2.0, "horrible": -2.0, "waste": -1.5, "cheated": -2.0,
    "liar": -2.0, "liars": -2.0, "unacceptable": -1.8, "problem": -0.6, "issue": -0.5,
    "fail": -1.2, "failed": -1.2, "crash": -1.5, "crashed": -1.5, "boycott": -2.0,
    "garbage": -2.0, "trash": -1.8, "refund": -0.5, "ignored": -1.5, "never": 0.0,
    "nobody": -0.5, "sucks": -2.0, "annoying": -1.2, "frustrating": -1.5, "wrong": -1.0,
    "missing": -1.0, "expensive": -0.6, "lawsuit": -1.8, "misleading": -1.5, "defective": -1.8,
}
EN_NEGATORS: Final = (
    "not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "won't",
    "can't", "cannot", "without", "hardly", "nothing", "dont", "didnt", "isnt", "wasnt",
)
EN_INTENSIFIERS: Final[dict[str, float]] = {
    "very": 1.5, "so": 1.4, "too": 1.4, "really": 1.4, "extremely": 2.0, "super": 1.5,
    "totally": 1.6, "absolutely": 1.8, "incredibly": 1.8, "quite": 1.2, "truly": 1.4,
}
# fmt: on
