"""Names and street addresses in free text, found by the words that introduce them.

A name or an address has no check digit: it can only be recognised by its context, the
label a customer or an agent writes before it (``姓名：``, ``收货人``, ``我叫``, ``my name
is``, ``收货地址：``, ``address:``). These are masked wherever free text is shown or
written (:func:`security.pii.mask_text`), but they are not leak evidence: confirming a
delivery address with the customer is an agent's daily work, so the leak detector's
:func:`security.pii.find_pii` does not report them.

Masking keeps what a reader needs and no more: a name keeps its first character
(``张**``, ``J*** S****``); an address keeps its province and city, up to the first
``市``/``区``/``县`` or the first six characters (``浙江省杭州市****``).
"""

from __future__ import annotations

import re
from typing import Final

MAX_ADDRESS: Final = 60
"""An address runs to the end of its clause, at most this many characters."""

_ZH_NAME = re.compile(
    r"(?:姓名|名字|收货人|收件人|联系人|持卡人|开户名|户名|寄件人|我叫|本人叫)"
    r"(?:\s*(?:是|为|[:：])\s*|\s*)"
    r"(?P<name>[\u4e00-\u9fff·]{2,4})"
)
_EN_NAME = re.compile(
    r"(?:\b[Mm]y name is|\b[Nn]ame\s*[:：]|\b[Rr]ecipient\s*[:：]|\b[Cc]ardholder\s*[:：])\s*"
    r"(?P<name>[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})"
)
_ADDRESS = re.compile(
    r"(?:收货地址|收件地址|家庭住址|详细地址|住址|地址|住在|[Aa]ddress)\s*(?:是|为|[:：])?\s*"
    rf"(?P<address>[^，。,;；！!？?\n]{{6,{MAX_ADDRESS}}})"
)
_KEEP_UNTIL = ("市", "区", "县")
_NOT_A_NAME: Final = frozenset({"客服", "您好", "先生", "女士", "小姐", "本人", "不详", "未知"})


def contextual_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, masked)`` of each name and address introduced by its label."""
    spans: list[tuple[int, int, str]] = []
    if not text:
        return spans
    for match in _ZH_NAME.finditer(text):
        name = match.group("name")
        if name[:2] in _NOT_A_NAME:
            continue
        spans.append((match.start("name"), match.end("name"), name[0] + "*" * (len(name) - 1)))
    for match in _EN_NAME.finditer(text):
        masked = re.sub(r"[A-Za-z]+", lambda w: w.group()[0] + "*" * (len(w.group()) - 1),
                        match.group("name"))  # fmt: skip
        spans.append((match.start("name"), match.end("name"), masked))
    for match in _ADDRESS.finditer(text):
        address = match.group("address").rstrip()
        keep = _kept_prefix(address)
        start = match.start("address")
        spans.append((start + keep, start + len(address), "****"))
    return sorted(spans)


def _kept_prefix(address: str) -> int:
    """How much of an address stays readable: up to its city or district, at most six."""
    cut = min((address.find(m) + 1 for m in _KEEP_UNTIL if 0 <= address.find(m) < 6), default=0)
    if cut:
        return cut
    # an English address leads with the house and street: none of it stays
    return 0 if address.isascii() else min(6, len(address) // 2)
