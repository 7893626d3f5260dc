"""A side job between two chat turns does not cost the chat its evaluated prompt (issue 21).

Against the real default model: after a different prompt ran on the same client (what a
memory's fact extraction does), the next turn of the chat gets its evaluated prefix back from a
snapshot, and the reply is exactly what it is without the side job (greedy sampling), so the
restored key/value cache is the right one. Timing is left to ``bench/local_model.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.clients.local import LocalChatClient
from threadline.types import ChatMessage, Role

SYSTEM = ChatMessage(Role.SYSTEM, "You are a helpful assistant. " * 20)  # a prefix worth keeping
CHAT = [
    SYSTEM,
    ChatMessage(Role.USER, "My name is Ada and I grow tomatoes on my balcony in Porto."),
    ChatMessage(Role.ASSISTANT, "That sounds lovely, Ada! Tomatoes love a sunny balcony."),
]
SIDE = [
    ChatMessage(Role.SYSTEM, "You extract facts as JSON. " * 20),
    ChatMessage(Role.USER, "The user said: I am vegetarian."),
]
NEXT = ChatMessage(Role.USER, "What is my name, and what do I grow?")
GREEDY = {"temperature": 0.0, "max_tokens": 24}


@pytest.fixture
def client(local_model_path: Path) -> Iterator[LocalChatClient]:
    c = LocalChatClient(n_ctx=2048)
    yield c
    c.close()


async def reply(client: LocalChatClient, messages: list[ChatMessage]) -> str:
    response = await client.get_response(messages, options=GREEDY)  # type: ignore[arg-type]
    return response.text


async def test_the_chat_prefix_comes_back_after_a_side_job(client: LocalChatClient) -> None:
    await reply(client, CHAT[:2])
    alone = await reply(client, [*CHAT, NEXT])  # the chat's next turn with nothing in between

    client.close()  # start again: same turns, with a side job in between
    await reply(client, CHAT[:2])
    await reply(client, SIDE)
    states = client._states
    assert states is not None and states.restored == 0
    after_side_job = await reply(client, [*CHAT, NEXT])

    assert states.restored == 1  # the chat's prefix was put back, not evaluated again
    assert after_side_job == alone  # and it is the right one: the same greedy reply
    # The side job's prompt was kept aside in turn: running it again restores it too.
    await reply(client, SIDE)
    assert states.restored == 2


async def test_several_workloads_take_turns_without_losing_their_prefixes(
    client: LocalChatClient,
) -> None:
    """Four prompts in turn (more than the snapshots kept): every call still answers."""
    others = [
        [ChatMessage(Role.SYSTEM, f"You are assistant number {n}. " * 20), NEXT] for n in range(3)
    ]
    for _ in range(2):
        await reply(client, [*CHAT, NEXT])
        for messages in others:
            assert await reply(client, messages)
    states = client._states
    assert states is not None and states.restored >= 1
