"""Recognise and mask customer PII: resident IDs, bank cards, mobile numbers, e-mails
(and, for masking only, the names and addresses that labels introduce: pii_context).

The leak detector, the audit log and every screen that shows free text use
these helpers, so a number is judged the same way everywhere.

How a number is found: one linear-time regular expression picks out runs of
digits in which single spaces or dashes separate groups (``138 1234 5678``);
the groups of a run are then tried as candidates of at most 21 digits, so the
work stays linear in the text even on pathological input. A candidate is
rejected when it touches letters (waybills ``SF1234...``, masked ``138xxxx``),
asterisks (already masked), a decimal point or thousands separator, a currency
sign, or when the nearest context word before it speaks of an order, a waybill
or a hotline (订单号, 运单号, 快递, order, tracking...). What remains must pass
the kind's own checks: the GB 11643 check digit and a real birth date for a
resident ID; Luhn plus a card context word or a card prefix of the right
length for a bank card; a 1[3-9] mobile prefix for a mobile number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from watchfloor.security.pii_context import contextual_spans

__all__ = [
    "Finding",
    "find_pii",
    "mask_bank_card",
    "mask_email",
    "mask_id_card",
    "mask_mobile",
    "mask_text",
]

HIGH: Final = "high"
MEDIUM: Final = "medium"
LOW: Final = "low"
CONFIDENCE_RANK: Final = {LOW: 0, MEDIUM: 1, HIGH: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII in a text: where, what, and its masked form."""

    kind: str
    """``id_card``, ``bank_card``, ``mobile`` or ``email``."""
    start: int
    end: int
    masked: str
    confidence: str
    """``high`` (context word or unambiguous form), ``medium`` or ``low``."""


# A run of digits with single space/dash separators, an optional leading "+"
# and an optional final X (resident IDs). Each repetition consumes a digit, so
# matching is linear.
_RUN = re.compile(r"\+?\d(?:[ \-]?\d)*(?:[Xx](?![A-Za-z0-9]))?")
_GROUP = re.compile(r"\+?\d+[Xx]?")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}")

_PII_WORDS = (
    "手机",
    "电话",
    "联系方式",
    "号码",
    "身份证",
    "证件",
    "银行卡",
    "卡号",
    "信用卡",
    "储蓄卡",
    "借记卡",
    "账号",
    "账户",
    "尾号",
    "mobile",
    "phone",
    "tel",
    "cell",
    "card",
    "id no",
    "identity",
)
_CARD_WORDS = (
    "银行卡",
    "卡号",
    "信用卡",
    "储蓄卡",
    "借记卡",
    "银联",
    "card",
    "visa",
    "账户",
    "账号",
)
_ID_WORDS = ("身份证", "证件", "id no", "identity")
_NOT_PII_WORDS = (
    "订单",
    "单号",
    "运单",
    "快递",
    "物流",
    "包裹",
    "工单",
    "流水",
    "交易号",
    "编号",
    "批次",
    "商品",
    "货号",
    "sku",
    "order",
    "tracking",
    "waybill",
    "parcel",
    "invoice",
    "ticket",
    "ref",
    "订单号码",
    "运单号码",
    "售后单",
    "退款单",
    "服务单",
    "申请单",
    "单据",
    "发票",
    "序列号",
    "券码",
    "兑换码",
    "优惠券",
    "会员卡",
    "会员号",
    "礼品卡",
    "购物卡",
    "储值卡",
    "积分",
    "热线",
    "客服电话",
    "售后电话",
    "服务电话",
    "官方电话",
    "门店电话",
    "座机",
    "hotline",
)
_CONTEXT = re.compile(
    "|".join(re.escape(w) for w in sorted(set(_PII_WORDS + _NOT_PII_WORDS), key=len, reverse=True)),
    re.IGNORECASE,
)
_GENERIC: Final = frozenset({"号码", "账号", "账户"})
_NOT_AFTER: Final = ("订单", "单号", "运单", "快递", "物流", "包裹", "order")
_CONTEXT_BEFORE: Final = 16
_CONTEXT_AFTER: Final = 8
_CLAUSE_END = re.compile(r"[，。,;；！!？?\n]")
_CURRENCY_BEFORE = "¥￥$€£"
_AMOUNT_AFTER = ("元", "块", "rmb", "yuan", "万", "%", "件", "个", "次", "年", "月", "日", "号")
_ROLE_MAILBOXES = frozenset(
    {"service", "support", "kefu", "help", "info", "noreply", "no-reply", "admin", "contact", "cs"}
)

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
# Province-level codes of GB/T 2260 (first two digits of a resident ID).
_PROVINCES: Final = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64"}
    | {"65", "71", "81", "82", "83", "91"}
)


def find_pii(text: str) -> list[Finding]:
    """Every piece of PII in ``text``, in order of position."""
    findings: list[Finding] = []
    if not text:
        return findings
    lowered = text.lower()
    for match in _RUN.finditer(text):
        findings.extend(_numbers_in_run(text, lowered, match.start(), match.end()))
    findings.extend(_emails(text))
    findings.sort(key=lambda f: f.start)
    return findings


def mask_text(text: str) -> str:
    """``text`` with every finding replaced by its masked form, and the names and addresses
    its labels introduce (:mod:`security.pii_context`: masked, never leak evidence)."""
    spans = [(f.start, f.end, f.masked) for f in find_pii(text)] + contextual_spans(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end, masked in sorted(spans):
        if start < pos:  # inside what is masked already (a phone inside an address)
            if end > pos:
                pos = end
            continue
        out.append(text[pos:start])
        out.append(masked)
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --- masking --------------------------------------------------------------------------------


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit() or c in "Xx")


def mask_mobile(value: str) -> str:
    """``13812345678`` -> ``138****5678`` (country code dropped)."""
    d = _digits(value)[-11:]
    return d[:3] + "****" + d[-4:] if len(d) >= 8 else "*" * len(d)


def mask_id_card(value: str) -> str:
    """``11010519491231002X`` -> ``1101**********002X``."""
    d = _digits(value).upper()
    return d[:4] + "*" * (len(d) - 8) + d[-4:] if len(d) > 8 else "*" * len(d)


def mask_bank_card(value: str) -> str:
    """``6222021234567891234`` -> ``6222 **** **** 1234`` (first and last four)."""
    d = _digits(value)
    return f"{d[:4]} **** **** {d[-4:]}" if len(d) > 8 else "*" * len(d)


def mask_email(value: str) -> str:
    """``zhang.san@example.com`` -> ``z***@example.com``."""
    local, _, domain = value.partition("@")
    return (local[:1] or "*") + "***@" + domain


# --- numbers ----------------------------------------------------------------------------------


def _numbers_in_run(text: str, lowered: str, start: int, end: int) -> list[Finding]:
    if _touches_code(text, start, end):
        return []
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text, start, end)]
    out: list[Finding] = []
    i = 0
    while i < len(groups):
        found = None
        lengths: list[int] = []
        digits = ""
        for j in range(i, min(len(groups), i + _MAX_GROUPS)):
            part = text[groups[j][0] : groups[j][1]].lstrip("+")
            digits += part
            lengths.append(len(part))
            if len(digits) > 21:
                break
            if not _plausible_shape(lengths):
                continue
            candidate = _classify(text, lowered, groups[i][0], groups[j][1], digits, j - i + 1)
            if candidate is not None:
                found = (candidate, j)
        if found is None:
            i += 1
            continue
        out.append(found[0])
        i = found[1] + 1
    return out


_MAX_GROUPS: Final = 6
_LENGTHS: Final = frozenset({11, 13, 15, 16, 17, 18, 19})
_SHAPES: Final = frozenset(
    {(3, 4, 4), (3, 8), (7, 4), (6, 8, 4), (4, 4, 4, 4), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2)}
    | {(4, 4, 4, 4, 3), (6, 13), (6, 12), (6, 10)}
)
_COUNTRY: Final = frozenset({2, 4})  # "86" / "+86" (after the plus is stripped), "0086"


def _plausible_shape(lengths: list[int]) -> bool:
    """Groupings people actually write: one block, 3-4-4 mobiles, 4-4-4-4 cards..."""
    if len(lengths) == 1:
        return True
    shape = tuple(lengths)
    if shape in _SHAPES:
        return True
    return lengths[0] in _COUNTRY and (len(lengths) == 2 or shape[1:] in _SHAPES)


def _touches_code(text: str, start: int, end: int) -> bool:
    """The run is part of a code, a masked value or a formatted amount."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if (before.isascii() and before.isalpha()) or (after.isascii() and after.isalpha()):
        return True
    if (before and before in "*＊•●_/#") or (after and after in "*＊•●_/#"):
        return True
    if before in ".,:" and start > 1 and text[start - 2].isdigit():
        return True
    return after in ".,:" and end + 1 < len(text) and text[end + 1].isdigit()


def _classify(
    text: str, lowered: str, start: int, end: int, digits: str, groups: int
) -> Finding | None:
    n = len(digits)
    if n not in _LENGTHS or (digits[0] == "0" and not digits.startswith("0086")):
        return None
    context = _context(lowered, start, end)
    if context == "not":
        return None
    span = text[start:end]
    if n == 18 and _valid_id(digits):
        conf = HIGH if context in ("id", "pii") else MEDIUM
        return Finding("id_card", start, end, mask_id_card(span), conf)
    if n in (11, 13, 15):
        mobile = _mobile(digits, groups)
        if mobile:
            conf = HIGH if context in ("pii", "id", "card") or groups > 1 else MEDIUM
            return Finding("mobile", start, end, mask_mobile(mobile), conf)
    if 16 <= n <= 19 and digits.isdigit() and _luhn(digits):
        if context == "card":
            return Finding("bank_card", start, end, mask_bank_card(span), HIGH)
        if _card_prefix(digits) and not _looks_like_date_serial(digits):
            conf = MEDIUM if context is None else HIGH
            return Finding("bank_card", start, end, mask_bank_card(span), conf)
    return None


def _mobile(digits: str, groups: int) -> str | None:
    if digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) != 11 or digits[0] != "1" or digits[1] not in "3456789":
        return None
    return digits


def _context(lowered: str, start: int, end: int) -> str | None:
    """The kind of the nearest context word before the number (or right after it)."""
    if _amount_around(lowered, start, end):
        return "not"
    window = lowered[max(0, start - _CONTEXT_BEFORE) : start]
    nearest = None
    previous_end = -1
    for match in _CONTEXT.finditer(window):
        # "号码" right after another word belongs to it: 发票号码 is an invoice number.
        if not (match.group() in _GENERIC and match.start() == previous_end):
            nearest = match.group()
        previous_end = match.end()
    if nearest is None:
        # Only the same clause counts: "13812345678，订单已发货" is still a phone number.
        after = _CLAUSE_END.split(lowered[end : end + _CONTEXT_AFTER], maxsplit=1)[0]
        if any(w in after for w in _NOT_AFTER):
            return "not"
        return None
    if nearest in _NOT_PII_WORDS:
        return "not"
    if nearest in _CARD_WORDS:
        return "card"
    if nearest in _ID_WORDS:
        return "id"
    return "pii"


def _amount_around(lowered: str, start: int, end: int) -> bool:
    before = lowered[max(0, start - 2) : start].strip()
    if before and before[-1] in _CURRENCY_BEFORE:
        return True
    after = lowered[end : end + 4].lstrip()
    return after.startswith(_AMOUNT_AFTER)


def _valid_id(digits: str) -> bool:
    """GB 11643: province code, a real birth date, and the ISO 7064 MOD 11-2 check digit."""
    if not digits[:17].isdigit() or digits[:2] not in _PROVINCES:
        return False
    try:
        born = date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > date.today():
        return False
    total = sum(int(c) * w for c, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == digits[17].upper()


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix(digits: str) -> bool:
    """A known issuer prefix with a length that issuer uses."""
    n = len(digits)
    if digits.startswith("62"):  # UnionPay
        return True
    if digits[0] == "4":  # Visa
        return n in (16, 19)
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":  # Mastercard
        return n == 16
    return digits.startswith(("35", "6011", "65"))  # JCB, Discover


def _looks_like_date_serial(digits: str) -> bool:
    """Order and transaction ids often start with a date (``20241111...``)."""
    if not digits.startswith(("19", "20")):
        return False
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return True


# --- e-mail -------------------------------------------------------------------------------------


def _emails(text: str) -> list[Finding]:
    out: list[Finding] = []
    if "@" not in text:
        return out
    for match in _EMAIL.finditer(text):
        start, value = match.start(), match.group()
        if start > 0 and text[start - 1] in "*＊":
            continue
        local = value.partition("@")[0]
        if "*" in local:
            continue
        conf = LOW if local.lower() in _ROLE_MAILBOXES else HIGH
        out.append(Finding("email", start, match.end(), mask_email(value), conf))
    return out
