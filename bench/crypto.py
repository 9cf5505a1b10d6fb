"""Micro-benchmark of field encryption: how much the collector pays per sensitive field.

Run: ``python bench/crypto.py [--n 20000]``. Prints µs per field for encrypt and
decrypt of short and chat-sized texts, and µs per event for ``encrypt_event``
on an ``agent.message`` (one sensitive field) including the record copy.
Keys live in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

from watchfloor.core.events import AgentMessage
from watchfloor.security.crypto import FieldCipher, decrypt_event, encrypt_event

AAD = b"agent.message|chat-1|m1|1700000000.5|text"
TEXTS = {
    "short": "您好，请提供订单号 13812341234"[:24],
    "chat": ("您好，我的订单还没有发货，手机 138 1234 1234，麻烦尽快处理。" * 8)[:100],
    "long": "x" * 4096,
}


def per_call_us(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        cipher = FieldCipher.load(tmp, create=True)
        for label, text in TEXTS.items():
            value = cipher.encrypt(text, AAD)
            enc = per_call_us(lambda t=text: cipher.encrypt(t, AAD), n)
            dec = per_call_us(lambda v=value: cipher.decrypt(v, AAD), n)
            size = len(text.encode())
            print(f"{label:6} {size:5d} B  encrypt {enc:6.2f} µs/field  decrypt {dec:6.2f} µs")
        event = AgentMessage(
            ts=1700000000.5, source="chat-1", id="m1", agent_id="a7", conversation_id="c1",
            channel="chat", direction="to_customer", text=TEXTS["chat"],
        )  # fmt: skip
        sealed = encrypt_event(event, cipher)
        enc_event = per_call_us(lambda: encrypt_event(event, cipher), n)
        dec_event = per_call_us(lambda: decrypt_event(sealed, cipher), n)
        print(f"encrypt_event  {enc_event:6.2f} µs/event   decrypt_event {dec_event:6.2f} µs/event")
        print(f"=> {1e6 / enc_event:,.0f} agent.message events/s on one core for encryption")


if __name__ == "__main__":
    main()
