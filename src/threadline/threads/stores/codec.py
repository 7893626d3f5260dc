"""How stores turn a message into the bytes of one record and back, shared by every durable store.

A store never formats records itself: it asks its :class:`MessageCodec`. The default is compact
JSON; :class:`~threadline.threads.stores.encryption.EncryptedCodec` wraps it to encrypt message
bodies at rest. Either way a record that cannot be read back raises a
:class:`~threadline.exceptions.StoreError` naming the thread and the record.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

from threadline.exceptions import MessageFormatError, StoreError
from threadline.types.messages import ChatMessage

__all__ = [
    "ENCRYPTED_MAGIC",
    "JSONCodec",
    "MessageCodec",
    "corrupt_record_error",
    "corrupt_thread_error",
    "recode",
]

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Compact JSON text; one encoder for every record (``json.dumps`` makes one per call)."""

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_dumps = None

ENCRYPTED_MAGIC = b"\x00TLE1"
"""First bytes of an encrypted record; JSON never starts with NUL, so the two never mix up."""


def corrupt_record_error(thread_id: str, record: int, reason: str) -> StoreError:
    """The one error every store raises for a record it cannot read."""
    return StoreError(f"thread {thread_id!r}: stored message #{record} cannot be read: {reason}")


def corrupt_thread_error(thread_id: str, reason: str) -> StoreError:
    """The one error every store raises when a thread's own record contradicts itself.

    A fork chain that loops, a version that is not a number or disagrees with the stored messages:
    retrying cannot help (every later turn would fail the same way), so this says so instead of
    hanging or raising ``ConcurrentThreadUpdateError`` forever.
    """
    return StoreError(
        f"thread {thread_id!r} is corrupt in its store: {reason}; it cannot be read or continued. "
        "Restore it from a backup or export, or delete it"
    )


@runtime_checkable
class MessageCodec(Protocol):
    """Turns messages into record bytes and back.

    ``thread_bound`` says whether a record's bytes depend on its thread (e.g. a per-thread key):
    stores then re-encode rather than copy records moved to another thread.
    """

    thread_bound: bool

    def encode(self, message: ChatMessage, *, thread_id: str) -> bytes:
        """The record bytes for ``message`` in ``thread_id``."""
        ...

    def decode(self, data: bytes | str, *, thread_id: str, record: int) -> ChatMessage:
        """The message a record holds.

        Raises:
            StoreError: the record is corrupt, or needs another codec or key; the message names
                ``thread_id`` and ``record`` (the message's 1-based position in the thread).
        """
        ...


class JSONCodec:
    """Records are the message's JSON form, UTF-8 encoded: readable with any SQL or Redis tool."""

    thread_bound = False

    def encode(self, message: ChatMessage, *, thread_id: str) -> bytes:
        """Compact JSON of ``message.to_dict()``.

        Every turn encodes its messages, so the common shape (one text) takes orjson when it is
        installed (the ``server`` extra brings it): strings only, so its output is the standard
        encoder's, byte for byte. Anything else, or text orjson refuses (a lone surrogate), goes
        through the standard encoder, made once.

        Raises:
            MessageFormatError: the message holds a value JSON cannot carry (e.g. a tool result
                that is not JSON-able); nothing is written.
        """
        if _orjson_dumps is not None and message.plain_text is not None:
            try:
                return _orjson_dumps(message.to_dict())
            except TypeError:
                pass  # a lone surrogate: the standard encoder carries it (surrogatepass)
        try:
            text = _ENCODE(message.to_dict())
        except (TypeError, ValueError) as exc:
            raise MessageFormatError(
                f"message {message.message_id!r} of thread {thread_id!r} cannot be stored: {exc}; "
                "tool results must be JSON values (str, int, float, bool, None, list, dict)"
            ) from exc
        return text.encode(errors="surrogatepass")

    def decode(self, data: bytes | str, *, thread_id: str, record: int) -> ChatMessage:
        """Parse a JSON record."""
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            if raw.startswith(ENCRYPTED_MAGIC):
                raise corrupt_record_error(
                    thread_id,
                    record,
                    "it is encrypted; open the store with codec=EncryptedCodec(master_key) "
                    "holding the key it was written with",
                )
        else:
            raw = data
        return decode_json(raw, thread_id=thread_id, record=record)


def decode_json(raw: bytes | str, *, thread_id: str, record: int) -> ChatMessage:
    """Parse a message's JSON form, turning every failure into a ``StoreError``."""
    try:
        return ChatMessage.from_dict(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError, MessageFormatError, TypeError) as exc:
        # TypeError: a record of the wrong type (a number where bytes belong, in SQLite).
        raise corrupt_record_error(thread_id, record, f"it is corrupt ({exc})") from exc
    except RecursionError as exc:  # pathological nesting in a tampered record
        raise corrupt_record_error(thread_id, record, "it is corrupt (nested too deep)") from exc


def recode(
    codec: MessageCodec, data: bytes, *, from_thread: str, to_thread: str, record: int
) -> bytes:
    """A record of ``from_thread`` made fit for ``to_thread`` (copied as is when it can be)."""
    if not codec.thread_bound:
        return data
    message = codec.decode(data, thread_id=from_thread, record=record)
    return codec.encode(message, thread_id=to_thread)
