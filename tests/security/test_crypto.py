"""Field encryption: round trips, binding to record and field, rotation, tampering."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from watchfloor.core.events import (
    AgentMessage,
    DataAccess,
    Heartbeat,
    SocialMention,
    decode_batch,
    encode_batch,
)
from watchfloor.security.crypto import (
    DecryptError,
    FieldCipher,
    KeyringError,
    decrypt_event,
    encrypt_event,
    is_encrypted,
    list_field_keys,
)

AAD = b"agent.message|chat-1|m1|1700000000.5|text"


def message(**changes) -> AgentMessage:
    base = AgentMessage(
        ts=1700000000.5, source="chat-1", id="m1", agent_id="a7", conversation_id="c1",
        channel="chat", direction="to_customer", text="您好 13812341234, card 6222021234567890123",
    )  # fmt: skip
    return base.replace(**changes)


@pytest.fixture
def cipher(data_dir) -> FieldCipher:
    return FieldCipher.load(data_dir, create=True)


@pytest.mark.parametrize("plaintext", ["", "a", "客户手机 13812341234", "x" * 60_000, "\x00\n"])
def test_values_round_trip(cipher, plaintext):
    value = cipher.encrypt(plaintext, AAD)
    assert is_encrypted(value) and value.startswith(f"wfenc1:{cipher.key_id}:")
    assert len(plaintext) < 4 or plaintext not in value
    assert cipher.decrypt(value, AAD) == plaintext


def test_every_encryption_uses_a_fresh_nonce(cipher):
    values = {cipher.encrypt("same text", AAD) for _ in range(50)}
    nonces = {base64.b64decode(v.split(":")[2])[:12] for v in values}
    assert len(values) == 50 and len(nonces) == 50


@pytest.mark.parametrize(
    "other_aad",
    [
        b"agent.message|chat-1|m2|1700000000.5|text",
        b"agent.message|chat-2|m1|1700000000.5|text",
        b"agent.message|chat-1|m1|1700000001.5|text",
        b"social.mention|chat-1|m1|1700000000.5|author",
        b"",
    ],
)
def test_a_value_moved_to_another_record_or_field_fails_clearly(cipher, other_aad):
    value = cipher.encrypt("secret", AAD)
    with pytest.raises(DecryptError, match="belongs to another record or field"):
        cipher.decrypt(value, other_aad)


def flip(value: str, index: int) -> str:
    prefix, blob = value.rsplit(":", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[index] ^= 0x01
    return f"{prefix}:{base64.b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize("index", [0, 11, 12, 13, -17, -1])
def test_a_tampered_ciphertext_fails(cipher, index):
    value = cipher.encrypt("refund to 6222021234567890123", AAD)
    with pytest.raises(DecryptError, match="altered"):
        cipher.decrypt(flip(value, index), AAD)


@pytest.mark.parametrize(
    ("mangle", "message_"),
    [
        (lambda v: v.replace("wfenc1:", "wfenc2:"), "not an encrypted value"),
        (lambda v: "wfenc1:" + v.split(":", 2)[2], "bad base64|no key id|not in the keyring"),
        (lambda v: v[:-8], "bad base64|truncated"),
        (lambda v: v.rsplit(":", 1)[0] + ":AAAA", "truncated"),
        (lambda v: v.rsplit(":", 1)[0] + ":!!!!", "bad base64"),
        (lambda v: "wfenc1:" + "ffffffff:" + v.split(":", 2)[2], "not in the keyring"),
    ],
)
def test_malformed_values_fail_with_a_reason(cipher, mangle, message_):
    with pytest.raises(DecryptError, match=message_):
        cipher.decrypt(mangle(cipher.encrypt("x", AAD)), AAD)


def test_relabelling_a_value_with_another_key_id_fails(data_dir, cipher):
    old_id = cipher.key_id
    value = cipher.encrypt("secret", AAD)
    FieldCipher.rotate(data_dir)
    rotated = FieldCipher.load(data_dir)
    relabelled = value.replace(f":{old_id}:", f":{rotated.key_id}:")
    with pytest.raises(DecryptError, match="altered"):
        rotated.decrypt(relabelled, AAD)


def test_after_rotation_the_new_key_encrypts_and_old_values_still_decrypt(data_dir, cipher):
    old_value = cipher.encrypt("before", AAD)
    new_id = FieldCipher.rotate(data_dir)
    rotated = FieldCipher.load(data_dir)
    assert rotated.key_id == new_id != cipher.key_id
    assert rotated.encrypt("after", AAD).startswith(f"wfenc1:{new_id}:")
    assert rotated.decrypt(old_value, AAD) == "before"
    assert [k["current"] for k in list_field_keys(data_dir)] == [False, True]


def test_a_process_started_before_a_rotation_reads_values_of_the_new_key(data_dir, cipher):
    FieldCipher.rotate(data_dir)
    value = FieldCipher.load(data_dir).encrypt("after", AAD)
    assert cipher.decrypt(value, AAD) == "after"


def test_the_keyring_is_private_and_holds_256_bit_keys(data_dir, cipher):
    path = data_dir / "keys" / "field-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert len(base64.b64decode(data["keys"][0]["key"])) == 32
    assert "key" not in list_field_keys(data_dir)[0]


def test_loading_without_a_keyring_fails_unless_asked_to_create(data_dir):
    with pytest.raises(KeyringError, match="keys init"):
        FieldCipher.load(data_dir)
    FieldCipher.load(data_dir, create=True)
    first = FieldCipher.load(data_dir).key_id
    assert FieldCipher.load(data_dir, create=True).key_id == first


@pytest.mark.parametrize(
    "content",
    ["", "{}", '{"keys": []}', '{"current": "x", "keys": [{"id": "a", "key": "AAAA"}]}',
     '{"current": "b", "keys": [{"id": "a", "key": "' + "A" * 43 + '="}]}'],
)  # fmt: skip
def test_a_malformed_keyring_is_refused(data_dir, content):
    (data_dir / "keys").mkdir()
    (data_dir / "keys" / "field-keys.json").write_text(content)
    with pytest.raises(KeyringError):
        FieldCipher.load(data_dir)


def test_sensitive_event_fields_are_encrypted_and_survive_the_bus(cipher):
    original = message()
    sealed = encrypt_event(original, cipher)
    assert is_encrypted(sealed.text) and sealed.agent_id == "a7"
    assert encrypt_event(sealed, cipher) is sealed
    (through_bus,) = decode_batch(encode_batch([sealed]))
    assert decrypt_event(through_bus, cipher) == original


def test_social_mention_authors_and_texts_are_encrypted_and_optional_ones_left_alone(cipher):
    mention = SocialMention(ts=1.7e9, source="weibo", platform="weibo", topic="brand",
                            text="call me 13912345678", author="@张三")  # fmt: skip
    sealed = encrypt_event(mention, cipher)
    assert is_encrypted(sealed.author) and is_encrypted(sealed.text) and sealed.topic == "brand"
    assert decrypt_event(sealed, cipher) == mention
    anonymous = encrypt_event(mention.replace(author=None), cipher)
    assert anonymous.author is None and is_encrypted(anonymous.text)


def test_events_without_sensitive_fields_pass_through_unchanged(cipher):
    beat = Heartbeat(ts=1.7e9, source="acd-1")
    assert encrypt_event(beat, cipher) is beat and decrypt_event(beat, cipher) is beat


@pytest.mark.parametrize("field", ["id", "source", "ts"])
def test_an_encrypted_text_copied_into_another_event_fails(cipher, field):
    sealed = encrypt_event(message(), cipher)
    other = {"id": "m2", "source": "chat-9", "ts": 1700000099.0}[field]
    moved = encrypt_event(message(**{field: other}), cipher).replace(text=sealed.text)
    with pytest.raises(DecryptError, match="another record or field"):
        decrypt_event(moved, cipher)


def test_init_keys_creates_the_missing_keys_privately_and_never_overwrites(data_dir):
    from watchfloor.security.key_setup import init_keys
    from watchfloor.security.keys import list_key_files

    created = {p.name for p in init_keys(data_dir)}
    assert created == {"field-keys.json", "audit-signing.pem", "audit-signing.pub.pem", "signing"}
    before = {p.name: p.read_bytes() for p in (data_dir / "keys").iterdir() if p.is_file()}
    assert init_keys(data_dir) == []
    after = {p.name: p.read_bytes() for p in (data_dir / "keys").iterdir() if p.is_file()}
    assert after == before
    files = {f.path.name: f for f in list_key_files(data_dir)}
    assert files["field-keys.json"].mode == 0o600 and not files["field-keys.json"].too_open
    assert files["audit-signing.pem"].mode == 0o600
    assert stat.S_IMODE((data_dir / "keys").stat().st_mode) == 0o700


def test_a_key_file_open_to_others_is_flagged(data_dir):
    from watchfloor.security.key_setup import init_keys
    from watchfloor.security.keys import list_key_files

    init_keys(data_dir)
    (data_dir / "keys" / "field-keys.json").chmod(0o644)
    files = {f.path.name: f for f in list_key_files(data_dir)}
    assert files["field-keys.json"].too_open
    assert not files["audit-signing.pub.pem"].too_open


def test_data_access_resources_are_encrypted_and_round_trip(cipher):
    access = DataAccess(ts=1.7e9, source="crm", id="x1", actor="bot", action="export",
                        resource="customers?mobile=13912345678", records=5)  # fmt: skip
    sealed = encrypt_event(access, cipher)
    assert is_encrypted(sealed.resource) and sealed.actor == "bot"
    assert decrypt_event(sealed, cipher) == access


@pytest.mark.parametrize("blob", [b"", b"\x00" * 3, "身份证 11010519491231002X".encode() * 5000])
def test_sealed_blobs_round_trip_and_hide_their_content(cipher, blob):
    sealed = cipher.seal(blob, b"wf:engine:checkpoint|engine")
    assert sealed.startswith(f"wfseal1:{cipher.key_id}:".encode())
    assert b"11010519491231002X" not in sealed
    assert cipher.unseal(sealed, b"wf:engine:checkpoint|engine") == blob


@pytest.mark.parametrize(
    ("mangle", "message_"),
    [
        (lambda s: s[:-1] + bytes([s[-1] ^ 1]), "altered"),
        (lambda s: s[:20], "truncated"),
        (lambda s: s[len(b"wfseal1:") :], "not a sealed value"),
        (lambda s: s.replace(b"wfseal1:", b"wfseal1:beef0000", 1), "not in the keyring"),
    ],
)
def test_a_tampered_sealed_blob_fails_with_a_reason(cipher, mangle, message_):
    sealed = cipher.seal(b"state", b"wf:engine:checkpoint|engine")
    with pytest.raises(DecryptError, match=message_):
        cipher.unseal(mangle(sealed), b"wf:engine:checkpoint|engine")


def test_a_sealed_blob_moved_to_another_record_fails(cipher):
    sealed = cipher.seal(b"state", b"wf:engine:checkpoint|engine")
    with pytest.raises(DecryptError, match="belongs to another record"):
        cipher.unseal(sealed, b"wf:other|engine")


def test_a_sealed_blob_of_a_rotated_key_still_opens(data_dir, cipher):
    sealed = cipher.seal(b"state", b"aad")
    FieldCipher.rotate(data_dir)
    rotated = FieldCipher.load(data_dir)
    assert rotated.key_id != cipher.key_id
    assert rotated.unseal(sealed, b"aad") == b"state"
