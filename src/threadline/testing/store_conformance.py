"""The store conformance kit: the promises every ``ChatMessageStore`` keeps, as pytest tests.

Every store threadline ships passes it, and so can yours. Subclass :class:`StoreConformance` in a
test module and give it a ``store_harness`` fixture that says how to make your store::

    import functools
    import pytest
import pytest_asyncio
    from threadline.testing.store_conformance import StoreConformance, StoreHarness

    class TestMyStore(StoreConformance):
        @pytest.fixture
        async def store_harness(self, tmp_path):
            async def new_store():
                return MyStore(tmp_path / "db")

            yield StoreHarness(
                new_store=new_store,
                # Picklable, so child processes can open the same database:
                factory=functools.partial(MyStore, tmp_path / "db"),
                corrupt_record=my_corrupt_record,  # or leave out: that test is skipped
            )

The kit checks: order is preserved; every content type round-trips; appends are atomic and
version-checked (in one process and from two processes at once); two processes running agent
turns on one thread, retrying conflicts, never interleave a turn (20 rounds of 2 x 50 turns);
forks are independent; delete works and spares forks; a corrupt record raises ``StoreError``
naming the thread and record; bounded reads return the newest messages within a token budget;
store state serializes to JSON without secrets and restores. Tests need ``pytest`` and
``pytest-asyncio``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from threadline.closing import aclose_if_closable
from threadline.exceptions import ConcurrentThreadUpdateError, StoreError, ThreadStateError
from threadline.testing._turn_stress import check_turns, run_turn_stress
from threadline.threads.stores.base import ChatMessageStore, TokenCounter, estimate_tokens
from threadline.types.contents import (
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    TextContent,
    UriContent,
    UsageContent,
    UsageDetails,
)
from threadline.types.messages import ChatMessage, Role

__all__ = ["StoreConformance", "StoreHarness", "close_store", "turn"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreHarness:
    """How the kit makes and damages stores of the kind under test."""

    new_store: Callable[[], Awaitable[ChatMessageStore]]
    """A store holding a new, empty thread (each call a different thread)."""
    factory: Callable[[], ChatMessageStore]
    """What an agent's ``chat_message_store_factory`` would be: a store that ``load_state`` then
    points at a saved thread. Must be picklable (a class or ``functools.partial``) for the
    two-process test."""
    corrupt_record: Callable[[ChatMessageStore, int], Awaitable[None]] | None = None
    """Damage the stored record at 1-based position ``n`` of the store's thread, in place."""
    corrupt_skip_reason: str = "the harness gives no corrupt_record"
    """Why the corrupt-record test is skipped when ``corrupt_record`` is None."""
    cross_process_skip_reason: str | None = None
    """Set when the store cannot be shared by processes (e.g. in-memory); that test is skipped."""
    token_counter: TokenCounter = estimate_tokens
    """The counter the stores were made with, so bounded reads can be checked exactly."""
    secrets: Sequence[str] = ()
    """Strings that must never appear in serialized state (passwords in the connection URL)."""
    turn_stress_rounds: int = 20
    """Rounds of the two-process agent stress case (a new thread each round)."""
    turn_stress_turns: int = 50
    """Turns each of the two processes runs per round."""


async def close_store(store: object) -> None:
    """Close a store that holds connections (``aclose``); a no-op for stores that hold none."""
    await aclose_if_closable(store)


def turn(label: str, size: int = 3) -> list[ChatMessage]:
    """A turn of ``size`` messages whose texts say which turn and which part they are."""
    roles = [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    return [ChatMessage(roles[i % len(roles)], f"{label}|{i}/{size}") for i in range(size)]


def _every_content() -> list[ChatMessage]:
    return [
        ChatMessage(Role.SYSTEM, "be brief ✓ – ünïcödé 🧵"),
        ChatMessage(
            Role.ASSISTANT,
            contents=[
                TextContent("calling"),
                FunctionCallContent(call_id="c1", name="get", arguments='{"city": "Zürich"}'),
                UsageContent(UsageDetails(input_token_count=3, output_token_count=5)),
            ],
            author_name="planner",
        ),
        ChatMessage(
            Role.TOOL,
            contents=[
                FunctionResultContent(call_id="c1", result={"t": [1, 2.5, None, True, "x"]}),
                FunctionResultContent(call_id="c2", exception="boom"),
            ],
        ),
        ChatMessage(
            Role.USER,
            contents=[
                DataContent(data=bytes(range(256)), media_type="application/octet-stream"),
                UriContent(uri="https://example.invalid/a.png", media_type="image/png"),
                ErrorContent(message="model failed", error_code="500", details="retry"),
            ],
        ),
        ChatMessage(Role.USER, ""),
    ]


def _texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [m.text for m in messages]


def _turns_of(messages: Sequence[ChatMessage]) -> list[str]:
    """The turn labels in order, after checking that each turn is whole and contiguous."""
    labels: list[str] = []
    i = 0
    while i < len(messages):
        label, part = messages[i].text.split("|")
        size = int(part.split("/")[1])
        got = [m.text for m in messages[i : i + size]]
        assert got == [f"{label}|{k}/{size}" for k in range(size)], (
            f"turn {label!r} is split or interleaved at position {i}: {got}"
        )
        labels.append(label)
        i += size
    return labels


async def _version(store: ChatMessageStore) -> int:
    return len(await store.list_messages())


def _writer(
    factory: Callable[[], ChatMessageStore],
    state: Mapping[str, Any],
    name: str,
    rounds: int,
    turns: int,
    barrier: Any,
    results: Any,
) -> None:
    """A child process of the two-process test: contested rounds, then free-running turns."""
    results.put((name, asyncio.run(_write(factory, state, name, rounds, turns, barrier))))


async def _write(
    factory: Callable[[], ChatMessageStore],
    state: Mapping[str, Any],
    name: str,
    rounds: int,
    turns: int,
    barrier: Any,
) -> dict[str, Any]:
    store = factory()
    await store.load_state(state)
    outcome: dict[str, Any] = {"contested": [], "conflicts": 0, "written": []}
    try:
        # Contested rounds: both read the same version, then both append against it.
        for r in range(rounds):
            await asyncio.to_thread(barrier.wait)
            version = await _version(store)
            await asyncio.to_thread(barrier.wait)
            try:
                await store.add_messages(turn(f"{name}-c{r}", 3), expected_version=version)
                outcome["contested"].append("won")
            except ConcurrentThreadUpdateError:
                outcome["contested"].append("conflict")
        await asyncio.to_thread(barrier.wait)
        # Free running: retry each turn until it lands, as an agent would.
        for t in range(turns):
            label = f"{name}-{t}"
            while True:
                version = await _version(store)
                try:
                    await store.add_messages(turn(label, 2 + t % 3), expected_version=version)
                    break
                except ConcurrentThreadUpdateError:
                    outcome["conflicts"] += 1
            outcome["written"].append(label)
    finally:
        await close_store(store)
    return outcome


class StoreConformance:
    """The conformance tests; subclass it as ``Test...`` and provide a ``store_harness`` fixture."""

    pytestmark = [pytest.mark.asyncio]

    async def _new(
        self, harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> ChatMessageStore:
        store = await harness.new_store()
        conformance_stores.append(store)
        return store

    async def _reopen(
        self,
        harness: StoreHarness,
        store: ChatMessageStore,
        conformance_stores: list[ChatMessageStore],
    ) -> ChatMessageStore:
        """A second store object on the same thread, made the way ``deserialize_thread`` does."""
        other = harness.factory()
        conformance_stores.append(other)
        await other.load_state(json.loads(json.dumps(await store.serialize())))
        return other

    @pytest_asyncio.fixture
    async def conformance_stores(self) -> Any:
        """Every store a test makes, closed afterwards."""
        stores: list[ChatMessageStore] = []
        yield stores
        for store in stores:
            await close_store(store)

    async def test_new_thread_is_empty(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """A new thread reads as empty and starts at version 0."""
        store = await self._new(store_harness, conformance_stores)
        assert await store.list_messages() == []
        assert await store.list_messages(max_tokens=1000) == []
        assert await store.add_messages([], expected_version=0) == 0

    async def test_order_is_preserved(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Messages read back in the order written, from this store object and a reopened one."""
        store = await self._new(store_harness, conformance_stores)
        written: list[ChatMessage] = []
        version = 0
        for i, size in enumerate([1, 3, 2, 5, 1]):
            messages = turn(f"t{i}", size)
            version = await store.add_messages(messages, expected_version=version)
            written += messages
            assert version == len(written)
        assert await store.list_messages() == written
        reopened = await self._reopen(store_harness, store, conformance_stores)
        assert await reopened.list_messages() == written
        listed = await store.list_messages()
        listed.clear()  # the caller owns the list it gets
        assert await store.list_messages() == written

    async def test_every_content_type_round_trips(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Every content type, author names and Unicode come back equal to what was written."""
        store = await self._new(store_harness, conformance_stores)
        messages = _every_content()
        await store.add_messages(messages)
        reopened = await self._reopen(store_harness, store, conformance_stores)
        for got in (await store.list_messages(), await reopened.list_messages()):
            assert got == messages
            assert [m.to_dict() for m in got] == [m.to_dict() for m in messages]

    async def test_a_view_of_the_thread_never_changes(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """``view_messages()``, where offered: the messages, and later writes never change it."""
        store = await self._new(store_harness, conformance_stores)
        view_messages = getattr(store, "view_messages", None)
        if view_messages is None:
            pytest.skip("the store offers no view_messages(); agents read it with list_messages()")
        await store.add_messages(turn("a"), expected_version=0)
        view = await view_messages()
        assert list(view) == await store.list_messages() and len(view) == 3
        assert view[0] == view[-3] and view[-1].text == "a|2/3"
        await store.add_messages(turn("b"), expected_version=3)
        conformance_stores.append(await store.fork(at=2))
        assert _turns_of(list(view)) == ["a"]  # written after: not in it
        assert _turns_of(list(await view_messages())) == ["a", "b"]
        await store.delete()
        assert _turns_of(list(view)) == ["a"]  # a view held across a delete keeps its messages

    async def test_version_conflict_writes_nothing(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """A stale ``expected_version`` raises ``ConcurrentThreadUpdateError``, writes nothing."""
        store = await self._new(store_harness, conformance_stores)
        await store.add_messages(turn("a"), expected_version=0)
        for stale in (0, 2, 4):
            with pytest.raises(ConcurrentThreadUpdateError) as info:
                await store.add_messages(turn("b"), expected_version=stale)
            assert info.value.expected_version == stale
            assert info.value.actual_version == 3
        assert _turns_of(await store.list_messages()) == ["a"]
        assert await store.add_messages(turn("c"), expected_version=3) == 6

    async def test_concurrent_appends_are_atomic(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Racing appends never split a turn; racing checked appends have one winner."""
        store = await self._new(store_harness, conformance_stores)
        # Unchecked appends racing on several store objects (one when the store cannot be shared):
        # every turn lands whole.
        writers = [store] * 3
        if store_harness.cross_process_skip_reason is None:
            writers[1:] = [
                await self._reopen(store_harness, store, conformance_stores) for _ in range(2)
            ]
        labels = [f"u{i}" for i in range(24)]
        await asyncio.gather(
            *(writers[i % 3].add_messages(turn(label, 2 + i % 4)) for i, label in enumerate(labels))
        )
        got = await store.list_messages()
        assert sorted(_turns_of(got)) == sorted(labels)
        # Checked appends against one version: exactly one wins, the rest conflict.
        version = len(got)
        results = await asyncio.gather(
            *(
                writers[i % 3].add_messages(turn(f"v{i}"), expected_version=version)
                for i in range(6)
            ),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, int)]
        assert wins == [version + 3], results
        assert all(isinstance(r, ConcurrentThreadUpdateError) for r in results if r not in wins)
        assert len(await store.list_messages()) == version + 3

    async def test_two_processes_append_to_one_thread(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Two processes write one thread: no turn lost or split, conflicts surfaced."""
        if store_harness.cross_process_skip_reason is not None:
            pytest.skip(store_harness.cross_process_skip_reason)
        store = await self._new(store_harness, conformance_stores)
        await store.add_messages(turn("start"), expected_version=0)
        state = json.loads(json.dumps(await store.serialize()))
        rounds, turns = 3, 12
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads and event loops
        barrier = ctx.Barrier(2, timeout=60)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=_writer,
                args=(store_harness.factory, state, name, rounds, turns, barrier, results),
            )
            for name in ("p1", "p2")
        ]
        for p in procs:
            p.start()
        try:
            outcomes = dict([await asyncio.to_thread(results.get, True, 120) for _ in procs])
        finally:
            for p in procs:
                await asyncio.to_thread(p.join, 30)
                if p.is_alive():
                    p.kill()
            results.close()
        assert [p.exitcode for p in procs] == [0, 0]
        labels = _turns_of(await store.list_messages())
        assert labels[0] == "start"
        for r in range(rounds):
            both = sorted(outcomes[n]["contested"][r] for n in ("p1", "p2"))
            assert both == ["conflict", "won"], f"round {r}: {both}"
            winners = [n for n in ("p1", "p2") if outcomes[n]["contested"][r] == "won"]
            assert f"{winners[0]}-c{r}" in labels
        for name in ("p1", "p2"):
            mine = [label for label in labels if label.startswith(f"{name}-") and "-c" not in label]
            assert mine == [f"{name}-{t}" for t in range(turns)]  # none lost, in order
            assert outcomes[name]["written"] == mine
        assert len(labels) == 1 + rounds + 2 * turns

    async def test_two_processes_run_agent_turns_on_one_thread(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Two processes run ``ChatAgent.run`` on one thread, retrying conflicts: whole turns.

        Every user turn is followed by its own reply, nothing is stored twice or lost, each
        process's turns keep their order; ``turn_stress_rounds`` rounds, a new thread each.
        """
        if store_harness.cross_process_skip_reason is not None:
            pytest.skip(store_harness.cross_process_skip_reason)
        stores = [
            await self._new(store_harness, conformance_stores)
            for _ in range(store_harness.turn_stress_rounds)
        ]
        states = [json.loads(json.dumps(await store.serialize())) for store in stores]
        turns = store_harness.turn_stress_turns
        await run_turn_stress(store_harness.factory, states, turns)
        for r, store in enumerate(stores):
            check_turns(await store.list_messages(), turns, where=f"round {r}")

    async def test_fork_is_independent(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """A fork starts with its parent's history; later writes on either side stay apart."""
        parent = await self._new(store_harness, conformance_stores)
        await parent.add_messages(turn("a") + turn("b"), expected_version=0)
        child = await parent.fork()
        conformance_stores.append(child)
        assert _turns_of(await child.list_messages()) == ["a", "b"]
        assert await child.add_messages(turn("child"), expected_version=6) == 9
        assert await parent.add_messages(turn("parent", 2), expected_version=6) == 8
        assert _turns_of(await parent.list_messages()) == ["a", "b", "parent"]
        assert _turns_of(await child.list_messages()) == ["a", "b", "child"]
        grandchild = await child.fork()
        conformance_stores.append(grandchild)
        await grandchild.add_messages(turn("g", 1), expected_version=9)
        await child.add_messages(turn("child2"), expected_version=9)
        assert _turns_of(await grandchild.list_messages()) == ["a", "b", "child", "g"]
        assert _turns_of(await child.list_messages()) == ["a", "b", "child", "child2"]
        reopened = await self._reopen(store_harness, grandchild, conformance_stores)
        assert _turns_of(await reopened.list_messages()) == ["a", "b", "child", "g"]
        empty_fork = await (await self._new(store_harness, conformance_stores)).fork()
        conformance_stores.append(empty_fork)
        assert await empty_fork.list_messages() == []

    async def test_fork_at_a_position(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """``fork(at=N)`` starts with the first N messages; the rest stay the parent's alone."""
        parent = await self._new(store_harness, conformance_stores)
        await parent.add_messages(turn("a") + turn("b") + turn("c"), expected_version=0)
        branch = await parent.fork(at=3)
        conformance_stores.append(branch)
        assert _turns_of(await branch.list_messages()) == ["a"]
        assert await branch.add_messages(turn("x"), expected_version=3) == 6
        assert await parent.add_messages(turn("d"), expected_version=9) == 12
        assert _turns_of(await branch.list_messages()) == ["a", "x"]
        assert _turns_of(await parent.list_messages()) == ["a", "b", "c", "d"]
        twig = await branch.fork(at=4)  # inside the branch's own messages, after the shared part
        conformance_stores.append(twig)
        assert [m.text for m in await twig.list_messages()][3:] == [m.text for m in turn("x")[:1]]
        start = await parent.fork(at=0)
        conformance_stores.append(start)
        assert await start.list_messages() == []
        reopened = await self._reopen(store_harness, branch, conformance_stores)
        assert _turns_of(await reopened.list_messages()) == ["a", "x"]
        await parent.delete()  # the branch keeps the prefix it shared
        assert _turns_of(await branch.list_messages()) == ["a", "x"]
        for bad in (-1, 7):
            with pytest.raises(ValueError, match="cannot fork"):
                await branch.fork(at=bad)

    async def test_delete(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """Delete empties the thread, spares its forks, and the thread id can start over."""
        parent = await self._new(store_harness, conformance_stores)
        await parent.add_messages(turn("a") + turn("b"))
        child = await parent.fork()
        conformance_stores.append(child)
        await child.add_messages(turn("c"))
        grandchild = await child.fork()
        conformance_stores.append(grandchild)
        await parent.add_messages(turn("after-fork"))
        await parent.delete()
        assert await parent.list_messages() == []
        assert await parent.list_messages(max_tokens=10_000) == []
        assert _turns_of(await child.list_messages()) == ["a", "b", "c"]
        assert _turns_of(await grandchild.list_messages()) == ["a", "b", "c"]
        await child.delete()
        assert _turns_of(await grandchild.list_messages()) == ["a", "b", "c"]
        assert await grandchild.add_messages(turn("g"), expected_version=9) == 12
        # A deleted thread starts over, and deleting twice is harmless.
        assert await parent.add_messages(turn("again"), expected_version=0) == 3
        assert _turns_of(await parent.list_messages()) == ["again"]
        await parent.delete()
        await parent.delete()
        fresh = await self._new(store_harness, conformance_stores)
        await fresh.delete()
        assert await fresh.list_messages() == []

    async def test_other_writers_are_seen(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """A second store object sees appends, deletes and rewrites made through the first."""
        if store_harness.cross_process_skip_reason is not None:
            pytest.skip(store_harness.cross_process_skip_reason)
        writer = await self._new(store_harness, conformance_stores)
        await writer.add_messages(turn("a"))
        reader = await self._reopen(store_harness, writer, conformance_stores)
        assert _turns_of(await reader.list_messages()) == ["a"]
        await writer.add_messages(turn("b"))
        assert _turns_of(await reader.list_messages()) == ["a", "b"]
        await reader.add_messages(turn("c"), expected_version=6)
        await writer.add_messages(turn("d"), expected_version=9)
        assert _turns_of(await reader.list_messages()) == ["a", "b", "c", "d"]
        await writer.delete()
        assert await reader.list_messages() == []
        await writer.add_messages(turn("x") + turn("y") + turn("z") + turn("w") + turn("v"))
        assert _turns_of(await reader.list_messages()) == ["x", "y", "z", "w", "v"]

    async def test_corrupt_record_raises_store_error(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """A damaged record raises ``StoreError`` naming the thread and the record."""
        if store_harness.corrupt_record is None:
            pytest.skip(store_harness.corrupt_skip_reason)
        store = await self._new(store_harness, conformance_stores)
        await store.add_messages(turn("a") + turn("b"))
        await store_harness.corrupt_record(store, 2)
        reopened = await self._reopen(store_harness, store, conformance_stores)
        with pytest.raises(StoreError) as info:
            await reopened.list_messages()
        thread_ref = json.dumps(await store.serialize())
        assert "2" in str(info.value)
        assert any(
            isinstance(v, str) and v in str(info.value) for v in json.loads(thread_ref).values()
        ), f"error does not name the thread: {info.value}"
        # The damage is contained: newer records still read within a budget that skips it.
        newest = await reopened.list_messages(max_tokens=store_harness.token_counter(turn("b")[0]))
        assert _texts(newest) == ["b|2/3"]

    async def test_bounded_reads_by_token_budget(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """``max_tokens`` returns the longest newest suffix within the budget, across forks."""
        count = store_harness.token_counter
        store = await self._new(store_harness, conformance_stores)
        messages = [ChatMessage(Role.USER, "w" * (7 * i % 50)) for i in range(40)]
        await store.add_messages(messages[:25])
        child = await store.fork()
        conformance_stores.append(child)
        await child.add_messages(messages[25:])
        tokens = [count(m) for m in messages]
        for target in (child, await self._reopen(store_harness, child, conformance_stores)):
            for budget in (
                0,
                tokens[-1] - 1,
                tokens[-1],
                sum(tokens[-7:]),
                sum(tokens[-20:]) + 1,
                sum(tokens),
                10**9,
            ):
                expected: list[ChatMessage] = []
                used = 0
                for m, n in zip(reversed(messages), reversed(tokens), strict=True):
                    if used + n > budget:
                        break
                    used += n
                    expected.insert(0, m)
                assert await target.list_messages(max_tokens=budget) == expected, budget
        fresh_fork = await child.fork()  # no messages of its own: all from its ancestors
        conformance_stores.append(fresh_fork)
        budget = sum(tokens[-20:])
        assert await fresh_fork.list_messages(max_tokens=budget) == messages[-20:]
        with pytest.raises(ValueError, match="max_tokens"):
            await store.list_messages(max_tokens=-1)

    async def test_state_serializes_and_restores(
        self, store_harness: StoreHarness, conformance_stores: list[ChatMessageStore]
    ) -> None:
        """State is JSON without secrets, restores through the factory, replaces on reload."""
        store = await self._new(store_harness, conformance_stores)
        await store.add_messages(_every_content())
        state = await store.serialize()
        text = json.dumps(state)
        for secret in store_harness.secrets:
            assert secret not in text, "serialized state leaks a secret"
        restored = harness_store = store_harness.factory()
        conformance_stores.append(harness_store)
        await restored.load_state(json.loads(text))
        await restored.load_state(json.loads(text))  # replacing twice never duplicates
        assert await restored.list_messages() == await store.list_messages()
        with pytest.raises(ThreadStateError):
            await restored.load_state({"thread_id": 42, "messages": "not a list", "path": 7})
