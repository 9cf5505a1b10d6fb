"""`watchfloor token` and `watchfloor keys` as a user runs them: subprocesses on a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from security.audit import AuditLog
from security.crypto import FieldCipher
from security.signing import SigningKeys
from security.tokens import Principal, TokenStore


def watchfloor(*args: str, data_dir: Path, redis_url: str | None = None):
    command = [sys.executable, "-m", "watchfloor", *args, "--data-dir", str(data_dir)]
    if redis_url:
        command += ["--redis", redis_url]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


async def test_a_created_token_is_printed_once_works_and_can_be_revoked(
    redis_url, redis_client, data_dir
):
    created = watchfloor("token", "create", "--name", "duty-lee", "--role", "duty_manager",
                         "--ttl", "8h", data_dir=data_dir, redis_url=redis_url)  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("wf_") and "\n" not in token
    assert "shown only once" in created.stderr and token not in created.stderr
    store = TokenStore(redis_client)
    assert await store.verify(token) == Principal("duty-lee", "duty_manager")

    listed = watchfloor("token", "list", "--json", data_dir=data_dir, redis_url=redis_url)
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["state"]) for r in rows] == [
        ("duty-lee", "duty_manager", "active")
    ]
    assert rows[0]["expires"] == pytest.approx(rows[0]["created"] + 8 * 3600)
    assert token not in listed.stdout

    revoked = watchfloor("token", "revoke", "duty-lee", data_dir=data_dir, redis_url=redis_url)
    assert revoked.returncode == 0, revoked.stderr
    assert await store.verify(token) is None
    again = watchfloor("token", "revoke", "duty-lee", data_dir=data_dir, redis_url=redis_url)
    assert again.returncode == 1
    assert again.stderr.strip() == "watchfloor token: no live token named 'duty-lee'"

    records = await AuditLog(redis_client).read()
    assert [(r["action"], r["target"]) for r in records] == [
        ("token.create", "duty-lee"),
        ("token.revoke", "duty-lee"),
    ]
    assert records[0]["details"]["role"] == "duty_manager"
    assert token not in json.dumps(records)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--name", "x", "--role", "root"], 2, "invalid choice"),
        (["--name", "bad name", "--role", "viewer"], 1, "bad token name"),
        (["--name", "x", "--role", "viewer", "--ttl", "8 hours"], 1, "bad duration"),
    ],
)
def test_bad_token_requests_fail_with_one_clear_line(redis_url, data_dir, args, code, message):
    result = watchfloor("token", "create", *args, data_dir=data_dir, redis_url=redis_url)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_second_live_token_with_the_same_name_is_refused(redis_url, data_dir):
    first = watchfloor("token", "create", "--name", "acd", "--role", "producer",
                       data_dir=data_dir, redis_url=redis_url)  # fmt: skip
    assert first.returncode == 0
    second = watchfloor("token", "create", "--name", "acd", "--role", "producer",
                        data_dir=data_dir, redis_url=redis_url)  # fmt: skip
    assert second.returncode == 1
    assert "already exists" in second.stderr and second.stdout == ""


async def test_keys_init_rotate_and_add_secret_are_audited(redis_url, redis_client, data_dir):
    init = watchfloor("keys", "init", data_dir=data_dir)
    assert init.returncode == 0 and "field-keys.json" in init.stdout
    assert "nothing overwritten" in watchfloor("keys", "init", data_dir=data_dir).stdout
    old = FieldCipher.load(data_dir)
    sealed = old.encrypt("13812341234", b"aad")

    rotated = watchfloor("keys", "rotate", data_dir=data_dir, redis_url=redis_url)
    assert rotated.returncode == 0, rotated.stderr
    new = FieldCipher.load(data_dir)
    assert new.key_id != old.key_id and new.key_id in rotated.stdout
    assert new.decrypt(sealed, b"aad") == "13812341234"

    added = watchfloor("keys", "add-secret", "acd-1", data_dir=data_dir, redis_url=redis_url)
    assert SigningKeys.load(data_dir).secrets_for("acd-1") == [added.stdout.strip()]

    listed = watchfloor("keys", "list", data_dir=data_dir)
    assert "TOO OPEN" not in listed.stdout and f"{new.key_id}  (encrypts)" in listed.stdout
    assert added.stdout.strip() not in listed.stdout

    records = await AuditLog(redis_client).read()
    assert [(r["action"], r["target"]) for r in records] == [
        ("keys.rotate", "field-keys"),
        ("keys.rotate", "signing:acd-1"),
    ]
    assert records[0]["details"] == {"from": old.key_id, "to": new.key_id}
