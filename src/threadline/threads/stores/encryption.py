"""Encryption at rest for message bodies: a codec any durable store can use.

Each thread gets its own AES-256-GCM key, derived from one master key with HKDF-SHA256 and the
thread id, so a leaked thread key exposes one thread only. The thread id is also bound into every
record as associated data: a record copied into another thread fails to decrypt instead of being
read as that thread's message.

A record starts with a 4-byte fingerprint of the master key, so reading with the wrong key fails
with "encrypted with a different master key", and a damaged record with "failed authentication":
never garbage. Message ids, positions and token counts stay in clear, so bounded reads and the
version check work without decrypting.

Needs the ``encryption`` extra (``cryptography``).
"""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from threadline.threads.stores.codec import (
    ENCRYPTED_MAGIC,
    JSONCodec,
    corrupt_record_error,
    decode_json,
)
from threadline.types.messages import ChatMessage

__all__ = ["EncryptedCodec"]

_SALT = b"threadline.store.v1"
_NONCE = 12
_FINGERPRINT = 4


def _derive(master_key: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(master_key)


class EncryptedCodec:
    """Encrypts each record with a key derived for its thread from ``master_key``.

    Args:
        master_key: at least 32 random bytes (e.g. ``os.urandom(32)``), kept outside the database
            (a secret manager, an environment variable). Losing it loses every encrypted thread.

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """

    thread_bound = True

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, bytes) or len(master_key) < 32:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError("master_key must be at least 32 random bytes, e.g. os.urandom(32)")
        self._master = master_key
        self._fingerprint = _derive(master_key, b"key-check", _FINGERPRINT)
        self._json = JSONCodec()
        self._aead = lru_cache(maxsize=1024)(self._make_aead)

    def __repr__(self) -> str:
        return f"EncryptedCodec(fingerprint={self._fingerprint.hex()})"

    def __reduce__(self) -> tuple[type[EncryptedCodec], tuple[bytes]]:
        # Picklable, so a store factory can be handed to worker processes.
        return (EncryptedCodec, (self._master,))

    def _make_aead(self, thread_id: str) -> AESGCM:
        return AESGCM(_derive(self._master, b"thread:" + thread_id.encode()))

    def encode(self, message: ChatMessage, *, thread_id: str) -> bytes:
        """Magic, key fingerprint, nonce, then the AES-GCM ciphertext of the JSON record."""
        nonce = os.urandom(_NONCE)
        plain = self._json.encode(message, thread_id=thread_id)
        sealed = self._aead(thread_id).encrypt(nonce, plain, thread_id.encode())
        return ENCRYPTED_MAGIC + self._fingerprint + nonce + sealed

    def decode(self, data: bytes | str, *, thread_id: str, record: int) -> ChatMessage:
        """Decrypt and parse a record; any mismatch is a ``StoreError``, never garbage."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if not raw.startswith(ENCRYPTED_MAGIC):
            raise corrupt_record_error(
                thread_id, record, "it is not encrypted, but this store requires encryption"
            )
        head = len(ENCRYPTED_MAGIC)
        fingerprint = raw[head : head + _FINGERPRINT]
        if fingerprint != self._fingerprint:
            raise corrupt_record_error(
                thread_id,
                record,
                f"it was encrypted with a different master key (fingerprint {fingerprint.hex()}, "
                f"this store's key is {self._fingerprint.hex()}); open it with the key it was "
                "written with",
            )
        nonce = raw[head + _FINGERPRINT : head + _FINGERPRINT + _NONCE]
        try:
            plain = self._aead(thread_id).decrypt(
                nonce, raw[head + _FINGERPRINT + _NONCE :], thread_id.encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise corrupt_record_error(
                thread_id,
                record,
                "it failed authentication: the record is corrupt or was tampered with",
            ) from exc
        return decode_json(plain, thread_id=thread_id, record=record)
