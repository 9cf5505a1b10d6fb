"""@mentions as each robot takes them, sent through the notifier to a local receiver."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.playbooks.helpers import FEISHU_SECRET, Receiver
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.actions.notify import Mention, Message, Notifier, Target

PEOPLE = (Mention("张伟", mobile="13800000001", wecom="zhangwei", feishu="ou_0001"),
          Mention("李娜", mobile="13800000002"))  # fmt: skip


async def test_wecom_and_feishu_pages_mention_the_people(serve_app: Any) -> None:
    receiver = Receiver()
    base = await serve_app(receiver.app)
    notifier = Notifier(
        {"wc": Target("wc", "wecom", f"{base}/wecom"),
         "fs": Target("fs", "feishu", f"{base}/feishu", FEISHU_SECRET)},
        policy=RetryPolicy(1, 0.05, 2.0),
    )  # fmt: skip
    message = Message("[critical] Order API down", "Acknowledge: http://x/ack", {}, PEOPLE)
    async with aiohttp.ClientSession() as session:
        for name in ("wc", "fs"):
            result = await notifier.send(session, name, message, key=f"k-{name}", drill=False)
            assert result.ok, result.detail
    wecom = receiver.of("wecom")[0]["body"]
    assert wecom["msgtype"] == "text"
    assert wecom["text"]["mentioned_list"] == ["zhangwei"]
    assert wecom["text"]["mentioned_mobile_list"] == ["13800000001", "13800000002"]
    feishu = receiver.of("feishu")[0]["body"]["content"]["text"]
    assert feishu.endswith('<at user_id="ou_0001">张伟</at>')
    assert receiver.rejected == []
