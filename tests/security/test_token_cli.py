"""`watchfloor token` and `watchfloor keys` as a user runs them: subprocesses on a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from watchfloor.security.audit import AuditLog
from watchfloor.security.crypto import FieldCipher
from watchfloor.security.signing import SigningKeys
from watchfloor.security.tokens import Principal, TokenStore


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


def _api_status(base: str, path: str, token: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _api_json(base: str, path: str, token: str) -> dict:
    import urllib.request

    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_token_created_beside_a_running_stack_works_against_it(running_stack):
    """Before the owner lock the command started a second redis-server on the stack's AOF:
    its token was refused by the running API (401) and came back later as a ghost."""
    stack = running_stack
    (stack_redis,) = stack.redis_servers()
    seen: set[int] = set()
    command = subprocess.Popen(
        [sys.executable, "-m", "watchfloor", "token", "create", "--name", "duty-lee",
         "--role", "duty_manager", "--data-dir", str(stack.data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while command.poll() is None:  # watch for a second server while the command runs
        seen.update(stack.redis_servers())
    out, err = command.communicate()
    assert command.returncode == 0, err
    assert seen <= {stack_redis}, f"a second redis-server ran on the stack's data: {seen}"
    token = out.strip()
    assert _api_status(stack.api, "/v1/incidents", token) == 200
    records = _api_json(stack.api, "/v1/audit", stack.admin_token())["records"]
    assert any(
        r["action"] == "token.create" and r["target"] == "duty-lee" for r in records
    )  # one audit chain: the command appended to the stack's
    listed = watchfloor("token", "list", "--json", data_dir=stack.data_dir)
    assert {r["name"]: r["state"] for r in json.loads(listed.stdout)}["duty-lee"] == "active"

    second = subprocess.run(
        [sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir",
         str(stack.data_dir), "--api-port", "1", "--collector-port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1
    assert f"in use by a running stack (pid {stack.process.pid})" in second.stderr
    assert stack.redis_servers() == [stack_redis]


def test_a_token_written_straight_into_the_stacks_redis_is_refused_and_reported(running_stack):
    import msgpack
    import redis as sync_redis

    from watchfloor.core import keys
    from watchfloor.core.redis_client import connect_sync
    from watchfloor.core.stack_lock import read_holder
    from watchfloor.security.tokens import FORGED_KEY, hash_token

    holder = read_holder(running_stack.data_dir / "redis")
    assert holder is not None and holder.url.startswith("unix://")
    socket_path = holder.url.removeprefix("unix://").partition("?")[0]
    anonymous = sync_redis.Redis(unix_socket_path=socket_path)
    with pytest.raises(sync_redis.AuthenticationError):
        anonymous.hset(keys.TOKENS, "x", "y")  # no password: refused
    anonymous.close()
    # One that has the password but not the keys folder (say a restored, edited AOF):
    client = connect_sync(holder.url)
    forged = "wf_" + "F" * 43
    record = {"name": "intruder", "role": "admin", "created": 1.0, "expires": None,
              "revoked": None}  # fmt: skip
    client.hset(keys.TOKENS, hash_token(forged), msgpack.packb(record))
    assert _api_status(running_stack.api, "/v1/tokens", forged) == 401
    assert client.hexists(FORGED_KEY, hash_token(forged))
    client.close()
    listed = watchfloor("token", "list", "--json", data_dir=running_stack.data_dir)
    assert {r["name"]: r["state"] for r in json.loads(listed.stdout)}["intruder"] == "forged"
    log = (running_stack.data_dir / "logs" / "monitor.log").read_text()
    assert "not created by watchfloor" in log
