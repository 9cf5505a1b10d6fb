"""The engine checkpoint is sealed with the field keyring: decrypted text never reaches Redis.

The monitor decrypts messages for its detectors, so its windows and reorder buffer hold
clear text; the checkpoint that carries them must not. A real monitor service on a real
Redis reads an encrypted message with PII, checkpoints, and a second monitor resumes from
the sealed state. A checkpoint written before sealing still loads; a sealed one without
the keyring gives a warm-up, never a crash.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import pytest

from tests.api.doubles import T0
from watchfloor.core import keys
from watchfloor.core.bus import EventProducer
from watchfloor.core.config import load_config
from watchfloor.core.events import AgentMessage
from watchfloor.core.incidents import IncidentStore
from watchfloor.monitor import checkpoint as ckpt
from watchfloor.monitor.sealing import SEALED, SealError, aad, open_snapshot, seal_snapshot
from watchfloor.monitor.service import MonitorService
from watchfloor.security.crypto import FieldCipher, encrypt_event

ID_CARD = "11010519491231002X"
CARD = "6222021234567890123"


def leaking_message(n: int, ts: float) -> AgentMessage:
    return AgentMessage(
        ts=ts, source="chat-gw", id=f"m{n}", agent_id="a-7", conversation_id="c1",
        channel="chat", direction="to_customer", text=f"身份证 {ID_CARD} 卡号 {CARD}",
    )  # fmt: skip


def service(redis, data_dir: Path, now: float) -> MonitorService:
    config = load_config("[redis]\nshards = 1\n[monitor]\nblock_ms = 20\nclaim_idle_ms = 50\n")
    config = dataclasses.replace(config, data_dir=str(data_dir))
    return MonitorService(redis, config, consumer_name="m1", clock=lambda: now)


async def run_once(svc: MonitorService) -> None:
    await svc.start()
    for _ in range(3):
        await svc.step()
    await svc.commit(force=True)


async def test_a_leaking_message_is_judged_and_the_checkpoint_holds_no_clear_text(
    redis_client, data_dir: Path
) -> None:
    cipher = FieldCipher.load(data_dir, create=True)
    # the second message is within the lateness: it waits in the reorder buffer
    events = [encrypt_event(leaking_message(i, T0 + i), cipher) for i in range(2)]
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(events)
    first = service(redis_client, data_dir, now=T0 + 1)
    await run_once(first)
    incidents = await IncidentStore(redis_client).list("all")
    assert [i.rule for i in incidents] == ["leak.pii_in_message"]

    raw = await redis_client.get(keys.engine_checkpoint(0))
    assert ID_CARD.encode() not in raw and CARD.encode() not in raw
    saved = ckpt.decode(raw).engine
    assert saved is not None and set(saved) == {SEALED}
    opened = msgpack.packb(open_snapshot(saved, cipher), use_bin_type=True)
    assert CARD.encode() in opened  # what the seal hides: the buffered clear text

    second = service(redis_client, data_dir, now=T0 + 1)
    await second.start()
    assert second.engine.watermark == first.engine.watermark
    assert second.engine.buffered == first.engine.buffered > 0


async def test_a_checkpoint_written_before_sealing_still_loads(
    redis_client, data_dir: Path
) -> None:
    FieldCipher.load(data_dir, create=True)
    template = service(redis_client, data_dir, now=T0)
    template.engine.process([leaking_message(1, T0)])
    plain = template.engine.snapshot()
    await redis_client.set(keys.engine_checkpoint(0), ckpt.encode(ckpt.Checkpoint(engine=plain)))
    resumed = service(redis_client, data_dir, now=T0)
    await resumed.start()
    assert resumed.engine.max_ts == T0


async def test_a_sealed_checkpoint_without_the_keyring_means_a_warm_up_not_a_crash(
    redis_client, data_dir: Path, tmp_path: Path
) -> None:
    cipher = FieldCipher.load(data_dir, create=True)
    template = service(redis_client, data_dir, now=T0)
    template.engine.process([leaking_message(1, T0)])
    sealed = seal_snapshot(template.engine.snapshot(), cipher)
    await redis_client.set(keys.engine_checkpoint(0), ckpt.encode(ckpt.Checkpoint(engine=sealed)))
    with pytest.raises(SealError, match="no field keyring"):
        open_snapshot(sealed, None)
    blind = service(redis_client, tmp_path / "elsewhere", now=T0)
    await blind.start()
    assert blind.engine.buffered == 0


def test_a_sealed_snapshot_is_bound_to_the_engine_checkpoint(data_dir: Path) -> None:
    cipher = FieldCipher.load(data_dir, create=True)
    big = {"texts": [f"{ID_CARD} {i}" for i in range(5_000)]}  # compressed, then sealed
    sealed = seal_snapshot(big, cipher)
    assert ID_CARD.encode() not in sealed[SEALED]
    assert open_snapshot(sealed, cipher) == big
    assert cipher.unseal(sealed[SEALED], aad(0))[:1] == b"z"


def test_one_shards_sealed_state_cannot_be_passed_off_as_anothers(data_dir: Path) -> None:
    cipher = FieldCipher.load(data_dir, create=True)
    sealed = seal_snapshot({"texts": [ID_CARD]}, cipher, shard=3)
    assert open_snapshot(sealed, cipher, shard=3) == {"texts": [ID_CARD]}
    with pytest.raises(Exception, match=r"(?i)tag|authentic|unseal|invalid"):
        open_snapshot(sealed, cipher, shard=4)
