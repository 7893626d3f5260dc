"""Two processes run agent turns on one thread: the stress case of the store conformance kit.

Each process runs ``ChatAgent.run`` turn after turn on the same thread (a store of its own over
the shared database), retrying a turn that meets ``ConcurrentThreadUpdateError`` as a careful
caller would. Whatever the timing, the thread must end as a sequence of whole turns: every user
message followed by its own reply, each turn exactly once, each process's turns in its order.
That is the promise of one-append turns (``agents/_turn.py``); a turn written in two appends
breaks it within a few rounds on every durable store.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from threadline.agents.chat_agent import ChatAgent
from threadline.clients.base import ChatOptions
from threadline.closing import aclose_if_closable
from threadline.exceptions import ConcurrentThreadUpdateError
from threadline.threads.stores.base import ChatMessageStore
from threadline.threads.thread import AgentThread
from threadline.types.messages import ChatMessage, Role
from threadline.types.responses import ChatResponse, ChatResponseUpdate

__all__ = ["check_turns", "run_turn_stress"]

_NAMES = ("p0", "p1")


class _EchoClient:
    """A model that answers each turn with a reply naming it, after yielding once.

    The yield lets the other process (and the store's I/O) run between a turn's read and its
    write, which is where interleaving turns would show.
    """

    service_name = "echo"
    stores_history = False

    async def get_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> ChatResponse:
        await asyncio.sleep(0)
        return ChatResponse(messages=(ChatMessage(Role.ASSISTANT, _reply(messages[-1].text)),))

    def get_streaming_response(
        self, messages: Sequence[ChatMessage], *, options: ChatOptions
    ) -> AsyncIterator[ChatResponseUpdate]:
        raise NotImplementedError("the stress case runs agent.run only")


def _reply(text: str) -> str:
    return f"reply to {text}"


def _turn_text(name: str, turn: int) -> str:
    return f"{name} turn {turn}"


async def _run_rounds(
    factory: Callable[[], ChatMessageStore],
    states: Sequence[Mapping[str, Any]],
    name: str,
    turns: int,
    barrier: Any,
) -> int:
    """Run ``turns`` turns on each round's thread; returns how many conflicts were retried."""
    agent = ChatAgent(_EchoClient())
    conflicts = 0
    for state in states:
        store = factory()
        await store.load_state(state)
        thread = AgentThread(message_store=store)
        try:
            await asyncio.to_thread(barrier.wait)  # both start each round together
            for t in range(turns):
                while True:
                    try:
                        await agent.run(_turn_text(name, t), thread=thread)
                        break
                    except ConcurrentThreadUpdateError:
                        conflicts += 1
        finally:
            await aclose_if_closable(store)
    return conflicts


def _child(
    factory: Callable[[], ChatMessageStore],
    states: Sequence[Mapping[str, Any]],
    name: str,
    turns: int,
    barrier: Any,
    results: Any,
) -> None:
    results.put((name, asyncio.run(_run_rounds(factory, states, name, turns, barrier))))


async def run_turn_stress(
    factory: Callable[[], ChatMessageStore], states: Sequence[Mapping[str, Any]], turns: int
) -> dict[str, int]:
    """Run two processes over the threads ``states`` name, one round per thread.

    Returns the conflicts each process retried (by process name). Raises ``AssertionError`` when a
    process fails or hangs.
    """
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads and event loops
    barrier = ctx.Barrier(len(_NAMES), timeout=120)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(factory, list(states), name, turns, barrier, results))
        for name in _NAMES
    ]
    for p in procs:
        p.start()
    try:
        timeout = 120 + 5 * len(states)
        outcomes = dict([await asyncio.to_thread(results.get, True, timeout) for _ in procs])
    finally:
        for p in procs:
            await asyncio.to_thread(p.join, 30)
            if p.is_alive():
                p.kill()
        results.close()
    assert [p.exitcode for p in procs] == [0] * len(procs), "a writer process failed"
    return outcomes


def check_turns(messages: Sequence[ChatMessage], turns: int, *, where: str) -> None:
    """Every user turn followed by its own reply; each process's turns once each, in order."""
    texts = [m.text for m in messages]
    assert len(texts) == 2 * turns * len(_NAMES), (
        f"{where}: {len(texts)} messages stored, expected {2 * turns * len(_NAMES)}"
    )
    next_turn = dict.fromkeys(_NAMES, 0)
    for i in range(0, len(texts), 2):
        question, answer = messages[i], messages[i + 1]
        name = question.text.split(" ", 1)[0]
        assert question.role == Role.USER and name in next_turn, (
            f"{where}: message {i} is {question.text!r} ({question.role}), not a user turn"
        )
        expected = _turn_text(name, next_turn[name])
        assert question.text == expected, (
            f"{where}: message {i} is {question.text!r}, but {name}'s next turn is {expected!r}"
        )
        assert answer.role == Role.ASSISTANT and answer.text == _reply(expected), (
            f"{where}: message {i + 1} is {answer.text!r}, not {name}'s reply to {expected!r}"
        )
        next_turn[name] += 1
