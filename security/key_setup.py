"""Creating the key files of ``DATA_DIR/keys/`` that are missing (``keys init`` and ``up``).

Never overwrites an existing key: losing the field keyring makes every encrypted value
unreadable. It sits above ``security.keys`` (where the files live), ``security.crypto``
(the field keyring) and ``security.signer`` (the audit signing key), which is why it is a
module of its own: the file layout stays importable by both without a circle.
"""

from __future__ import annotations

from pathlib import Path

from watchfloor.security.audit_chain import utc_now
from watchfloor.security.audit_trust import record_first_key
from watchfloor.security.crypto import create_keyring
from watchfloor.security.keys import (
    DIR_MODE,
    audit_private_path,
    ensure_keys_dir,
    field_keyring_path,
    keys_dir,
    signing_secrets_dir,
)
from watchfloor.security.signer import generate_signing_key, load_public_key


def init_keys(data_dir: str | Path) -> list[Path]:
    """Create every missing key file; return the paths created (existing ones untouched)."""
    ensure_keys_dir(data_dir)
    created: list[Path] = []
    keyring = field_keyring_path(data_dir)
    if not keyring.exists():
        create_keyring(data_dir)
        created.append(keyring)
    created.extend(_init_audit_key(data_dir))
    signing = signing_secrets_dir(data_dir)
    if not signing.exists():
        signing.mkdir(mode=DIR_MODE)
        created.append(signing)
    return created


def _init_audit_key(data_dir: str | Path) -> list[Path]:
    if audit_private_path(data_dir).exists():
        return []
    private, public = generate_signing_key(keys_dir(data_dir))
    # the key chain starts here, so `up`'s first start records the key as `keys init` does
    record_first_key(keys_dir(data_dir), load_public_key(public), utc_now())
    return [Path(private), Path(public)]
