"""Suite-wide guards (nothing here may reach beyond this machine) and the shared servers.

Tests that need Redis or PostgreSQL skip when the server is unreachable, unless
``THREADLINE_REQUIRE_SERVICES=1`` (set by CI), which turns the skip into a failure. Each such test
gets a key prefix or schema of its own, removed afterwards. The server fixtures are synchronous on
purpose, so async fixtures can also reach them through ``request.getfixturevalue``.
"""

from __future__ import annotations

import gc
import importlib.util
import ipaddress
import os
import socket
import sys
import uuid
from asyncio import selector_events
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, settings

from threadline.clients.local import models_dir, resolve_model
from threadline.exceptions import ClientError

# Timing-based health checks make property tests flaky on a loaded 2-core CI machine; what they
# check is correctness, so give every example as long as it needs.
settings.register_profile("threadline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("threadline")


def _is_local(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])  # pyright: ignore[reportUnknownArgumentType]
    else:
        return True  # unix sockets and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: would need DNS, so not local


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to connect to a non-loopback address."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address):
            raise AssertionError(f"test tried to reach {address!r}; only loopback is allowed")
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address):
            raise AssertionError(f"test tried to reach {address!r}; only loopback is allowed")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


REDIS_URL = os.environ.get("THREADLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "THREADLINE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_reachable: dict[str, str | None] = {}


def _unavailable(service: str, reason: str) -> None:
    message = f"{service} unreachable: {reason}"
    if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (THREADLINE_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _check_redis() -> str | None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)  # pyright: ignore[reportUnknownMemberType]
    try:
        client.ping()  # pyright: ignore[reportUnknownMemberType]
    except Exception as exc:  # any failure means: not usable here
        return repr(exc)
    finally:
        client.close()
    return None


def _check_postgres() -> str | None:
    import psycopg

    try:
        conn = psycopg.connect(POSTGRES_URL, connect_timeout=2)
    except Exception as exc:  # any failure means: not usable here
        return repr(exc)
    conn.close()
    return None


@pytest.fixture
def redis_url() -> str:
    """The Redis URL, once the server answers."""
    if "redis" not in _reachable:
        _reachable["redis"] = _check_redis()
    if _reachable["redis"] is not None:
        _unavailable(f"Redis at {REDIS_URL}", _reachable["redis"])
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"threadline-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)  # pyright: ignore[reportUnknownMemberType]
    try:
        found = client.scan_iter(match=prefix + "*", count=1000)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        keys = cast("list[bytes]", list(found))  # pyright: ignore[reportUnknownArgumentType]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL, once the server answers."""
    if "postgres" not in _reachable:
        _reachable["postgres"] = _check_postgres()
    if _reachable["postgres"] is not None:
        _unavailable(f"PostgreSQL at {POSTGRES_URL}", _reachable["postgres"])
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema of this test's own; dropped with everything in it afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"threadline_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# Every test (and every subprocess a test starts, whatever THREADLINE_HOME it is given) shares one
# models directory, so the default model is assembled once per machine, as for a user.
os.environ["THREADLINE_MODELS"] = str(models_dir())


def _local_model_or_reason() -> tuple[Path | None, str]:
    if importlib.util.find_spec("llama_cpp") is None:
        return None, "llama-cpp-python is not installed (pip install 'threadline[local]')"
    try:
        return resolve_model(None), ""  # assembles the default model on first use
    except ClientError as exc:
        return None, str(exc)


@pytest.fixture(scope="session")
def local_model_path() -> Path:
    """The default model's GGUF file, assembled on first use.

    Skips without it, or fails with THREADLINE_REQUIRE_LOCAL_MODEL=1.
    """
    path, reason = _local_model_or_reason()
    if path is None:
        if os.environ.get("THREADLINE_REQUIRE_LOCAL_MODEL") == "1":
            pytest.fail(
                f"THREADLINE_REQUIRE_LOCAL_MODEL=1 but the local model is missing: {reason}"
            )
        pytest.skip(f"local model unavailable: {reason}")
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a socket connection outlived its test's event loop.

    Such a connection is reported by Python only at exit, after pytest's summary, with no hint of
    which test made it (issue 21: "no warnings printed after pytest's summary line"). Found here
    while its owner is still known, it fails the run with its addresses instead.
    """
    gc.collect()
    transport: type = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 - not in the stubs
    leaked: list[str] = []
    for obj in gc.get_objects():
        if isinstance(obj, transport):
            sock, loop = getattr(obj, "_sock", None), getattr(obj, "_loop", None)
            if sock is not None and loop is not None and loop.is_closed():
                leaked.append(repr(sock))
    if leaked:
        print(
            "\nsocket connections left open by tests whose event loop has ended (close the "
            "client or server that owns them):\n  " + "\n  ".join(leaked),
            file=sys.stderr,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
