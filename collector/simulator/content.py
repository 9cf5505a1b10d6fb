"""What the simulated people write: Chinese service chat, social posts and identifiers.

Identifiers look real on purpose, because the leak detector must tell them
apart: order numbers of 18–19 digits (some pass the Luhn check by chance),
SF / YT / JD waybill numbers, masked phone numbers and 400 hotlines are harmless;
resident ID numbers with a valid GB 11643 check digit, bank card numbers with
a valid Luhn digit and mainland mobile numbers are personal data. Everything
is drawn from a caller's ``random.Random``, so a seed gives the same texts.
"""

from __future__ import annotations

import random
from typing import Final

ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK: Final = "10X98765432"
AREA_CODES: Final = ("110105", "310104", "440305", "330106", "510107", "420106")
MOBILE_PREFIXES: Final = ("138", "139", "150", "158", "186", "188", "135", "177", "199")
CARD_PREFIXES: Final = ("622202", "622848", "621700", "622588", "623668")
SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗"


def luhn_digit(body: str) -> str:
    """The Luhn check digit that completes ``body``."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_digit(number[:-1]) == number[-1]


def resident_id(rng: random.Random) -> str:
    """An 18-character resident ID with a valid birth date and check digit."""
    birth = f"{rng.randint(1960, 2003)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = rng.choice(AREA_CODES) + birth + f"{rng.randint(0, 999):03d}"
    check = ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]
    return body + check


def bank_card(rng: random.Random) -> str:
    """A 19-digit UnionPay-looking card number with a valid Luhn digit."""
    body = rng.choice(CARD_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(12))
    return body + luhn_digit(body)


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8))


def masked_mobile(rng: random.Random) -> str:
    number = mobile(rng)
    return f"{number[:3]}****{number[-4:]}"


def order_number(rng: random.Random) -> str:
    """An 18- or 19-digit order number (dated prefix); about 1 in 10 passes Luhn."""
    digits = rng.choice((18, 19))
    head = f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return head + "".join(str(rng.randint(0, 9)) for _ in range(digits - len(head)))


def waybill(rng: random.Random) -> str:
    """An SF Express, YTO or JD Logistics waybill number."""
    roll = rng.random()
    if roll < 0.45:
        return "SF" + "".join(str(rng.randint(0, 9)) for _ in range(12))
    if roll < 0.8:
        return "YT" + "".join(str(rng.randint(0, 9)) for _ in range(13))
    return "JDVA" + "".join(str(rng.randint(0, 9)) for _ in range(11))


def customer_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(("先生", "女士", "同学"))


# --- agent and customer messages -----------------------------------------------------------

AGENT_LINES: Final = (
    "您好，请问有什么可以帮您？",
    "亲，您的订单 {order} 已经发货了，快递单号 {waybill}，请注意查收。",
    "已为您登记退款申请，订单号 {order}，预计 1-3 个工作日原路退回。",
    "查询到您预留的手机号是 {masked}，如需修改请在 App 中操作。",
    "您的包裹 {waybill} 目前在转运中心，预计明天送达。",
    "非常抱歉给您带来不便，已为您申请 10 元无门槛优惠券。",
    "双十一期间咨询量较大，回复稍慢还请见谅，订单 {order} 我们会优先处理。",
    "如需人工服务请拨打 400-820-8820，工作时间 9:00-21:00。",
    "亲，满 299 减 50 的活动 11 月 11 日 23:59 截止哦。",
)
CUSTOMER_LINES: Final = (
    "我的订单 {order} 怎么还没发货？",
    "快递 {waybill} 三天没动了，帮我查一下",
    "我的手机号是 {mobile}，麻烦帮我改一下收货电话",
    "实名认证一直失败，我的身份证号 {resident_id}",
    "请问这个商品有优惠吗？",
    "退款什么时候到账？",
    "收到的商品有破损，怎么申请售后？",
)
INTERNAL_LINES: Final = (
    "客户情绪激动，订单 {order} 建议升级到主管处理",
    "物流异常工单已转仓储组，运单 {waybill}",
    "该客户已多次来电，备注：回访电话 {masked}",
)
LEAK_LINES: Final = (
    "亲，帮您核实了，登记的身份证号是 {resident_id}，手机号 {mobile}",
    "退款将原路退回到您的银行卡 {card}，持卡人 {name}，请留意到账短信",
    "您家人的联系电话 {mobile} 已经帮您改好了",
)


def fill(template: str, rng: random.Random) -> str:
    """``template`` with fresh identifiers in place of its fields."""
    return template.format(
        order=order_number(rng),
        waybill=waybill(rng),
        masked=masked_mobile(rng),
        mobile=mobile(rng),
        resident_id=resident_id(rng),
        card=bank_card(rng),
        name=customer_name(rng),
    )


# --- social media -------------------------------------------------------------------------------

PLATFORMS: Final = ("weibo", "douyin", "xiaohongshu", "zhihu", "bilibili")
NEUTRAL_POSTS: Final = (
    "{topic} 双十一有什么值得买的？求推荐",
    "刚在 {topic} 下单了一台扫地机器人，坐等发货",
    "{topic} 的客服回复还挺快的，点赞",
    "对比了一下，{topic} 的价格和别家差不多",
    "{topic} 今天的直播间好热闹",
    "收到货了，{topic} 包装很用心，好评",
)
NEGATIVE_POSTS: Final = (
    "{topic} 发货太慢了，等了一个星期还没动静，差评",
    "{topic} 客服一直不回消息，退款难，真的很失望",
    "在 {topic} 买到假货了！大家避雷",
    "{topic} 双十一先涨价再打折，虚假宣传，已经投诉到消协",
    "{topic} 的售后太差了，维权群已经几百人了",
    "再也不在 {topic} 买东西了，坑人",
)
VIRAL_POST: Final = (
    "【曝光】{topic} 大量用户收到假货，客服拒绝退款，已向 12315 投诉，请大家转发扩散维权！"
)


def social_post(rng: random.Random, topic: str, negative: bool) -> str:
    return rng.choice(NEGATIVE_POSTS if negative else NEUTRAL_POSTS).format(topic=topic)


def author_handle(rng: random.Random) -> str:
    return (
        rng.choice(("小", "大", "老", "阿"))
        + rng.choice("鱼猫狗熊兔鹿鹅")
        + str(rng.randint(10, 9999))
    )
