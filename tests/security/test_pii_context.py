"""Names and addresses introduced by their labels are masked wherever text is shown, and are
never leak evidence."""

from __future__ import annotations

import pytest

from watchfloor.security.pii import find_pii, mask_text

MASKED = [
    ("收货人：张三，电话13812345678", "收货人：张*，电话138****5678"),
    ("您好，我叫李小明，麻烦尽快发货", "您好，我叫李**，麻烦尽快发货"),
    ("收货地址：浙江省杭州市西湖区文三路123号", "收货地址：浙江省杭州市****"),
    ("地址是北京市朝阳区建国路88号，联系人王五", "地址是北京市****，联系人王*"),
    ("姓名 欧阳娜娜 身份证后四位1234", "姓名 欧*** 身份证后四位1234"),
    ("持卡人为赵六。", "持卡人为赵*。"),
    ("My name is John Smith, thanks", "My name is J*** S****, thanks"),
    ("Recipient: Mary-Jane Watson", "Recipient: M***-J*** W*****"),
    ("address: 12 Main Street, Springfield", "address: ****, Springfield"),
    # a mobile number inside an address is masked once, with the address
    ("住址：广东省深圳市南山区科技园 13812345678 号楼", "住址：广东省深圳市****"),
]

UNCHANGED = [
    "客户投诉升级：物流延误超过48小时",  # a title: no label, no name
    "订单号 202411111234567890 已退款",
    "联系人：客服",  # a role, not a person
    "Name: ",  # a label with nothing after it
    "surge on presale-chat: 120 offered in 5 min",
    "请提供您的收货地址",  # asking for an address is not one
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_a_labelled_name_or_address_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_a_labelled_name_or_address_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_names_and_addresses_are_not_leak_evidence() -> None:
    """Confirming a delivery address with the customer is the job: the leak detector's
    findings stay the numbers with check digits and the e-mails."""
    text = "收货人：张三，收货地址：浙江省杭州市西湖区文三路123号"
    assert find_pii(text) == []
    assert "张三" not in mask_text(text) and "文三路" not in mask_text(text)
