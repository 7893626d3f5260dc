"""thread.serialize() and agent.deserialize_thread(): exact, idempotent, strict about bad state."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests._helpers import store_of
from threadline import (
    AgentThread,
    ChatAgent,
    ChatMessage,
    ChatMessageList,
    ContextProvider,
    ScriptedChatClient,
    ThreadStateError,
)
from threadline.types.contents import JSONValue


class TaggedStore(ChatMessageList):
    """A custom store with extra state of its own, which must survive a round trip."""

    kind = "tagged"

    def __init__(self) -> None:
        super().__init__()
        self.tag = "none"

    async def serialize(self) -> dict[str, JSONValue]:
        state = await super().serialize()
        state["tag"] = self.tag
        state["extra"] = {"nested": [1, 2, 3]}
        return state

    async def load_state(self, state: Mapping[str, Any]) -> None:
        await super().load_state(state)
        self.tag = state["tag"]
        self.extra = state["extra"]


class Counter(ContextProvider):
    async def invoked(
        self,
        request_messages: Sequence[ChatMessage],
        response_messages: Sequence[ChatMessage],
        exception: BaseException | None,
        *,
        thread: AgentThread,
    ) -> None:
        state = self.state(thread)
        state["turns"] = state.get("turns", 0) + 1


async def make_thread() -> tuple[ChatAgent, AgentThread, dict[str, Any]]:
    agent = ChatAgent(ScriptedChatClient(["a", "b"]), context_providers=[Counter()])
    thread = agent.get_new_thread()
    await agent.run("one", thread=thread)
    await agent.run("two", thread=thread)
    return agent, thread, await thread.serialize()


async def test_state_is_plain_versioned_json_and_restores_exactly() -> None:
    agent, thread, state = await make_thread()
    assert json.loads(json.dumps(state)) == state
    assert state["type"] == "threadline.thread" and state["schema_version"] == 2
    assert state["binding"] == {"service": None, "agent_id": agent.id, "agent_name": None}
    assert state["service_thread_id"] is None and state["user_id"] is None
    assert state["context_providers"] == {"Counter": {"turns": 2}}

    restored = await agent.deserialize_thread(state)
    assert restored.id == thread.id
    assert await store_of(restored).list_messages() == await store_of(thread).list_messages()
    assert restored.context_state == {"Counter": {"turns": 2}}
    assert await restored.serialize() == state


async def test_restoring_twice_never_duplicates() -> None:
    agent, _, state = await make_thread()
    once = await agent.deserialize_thread(state)
    twice = await agent.deserialize_thread(await once.serialize())
    assert len(await store_of(twice).list_messages()) == 4
    # Loading the same state into the same store again replaces, never appends.
    store = once.message_store
    assert store is not None
    await store.load_state(state["store"]["state"])
    await store.load_state(state["store"]["state"])
    assert len(await store.list_messages()) == 4


async def test_a_custom_stores_extra_keys_survive() -> None:
    def factory() -> TaggedStore:
        return TaggedStore()

    agent = ChatAgent(ScriptedChatClient(["a"]), chat_message_store_factory=factory)
    thread = agent.get_new_thread()
    assert isinstance(thread.message_store, TaggedStore)
    thread.message_store.tag = "important"
    await agent.run("one", thread=thread)
    state = await thread.serialize()
    assert state["store"]["kind"] == "tagged"
    restored = await agent.deserialize_thread(json.loads(json.dumps(state)))
    assert isinstance(restored.message_store, TaggedStore)
    assert restored.message_store.tag == "important"
    assert restored.message_store.extra == {"nested": [1, 2, 3]}
    assert [m.text for m in await store_of(restored).list_messages()] == ["one", "a"]


async def test_service_thread_serializes_to_its_id_only() -> None:
    client = ScriptedChatClient(["a"], service_threads=True, service_name="svc")
    agent = ChatAgent(client)
    thread = (await agent.run("secret words")).thread
    assert thread is not None
    state = await thread.serialize()
    assert state["service_thread_id"] == "conv_1"
    assert state["binding"]["service"] == "svc"
    assert state["store"] is None and "secret" not in json.dumps(state)
    restored = await agent.deserialize_thread(state)
    assert restored.service_thread_id == "conv_1" and restored.message_store is None


def _mutations() -> list[tuple[str, Any, str]]:
    def set_(path: list[str | int], value: Any) -> Any:
        def apply(state: dict[str, Any]) -> dict[str, Any]:
            target: Any = state
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return state

        return apply

    def drop(key: str) -> Any:
        def apply(state: dict[str, Any]) -> dict[str, Any]:
            del state[key]
            return state

        return apply

    def drop_in(path: list[str], key: str) -> Any:
        def apply(state: dict[str, Any]) -> dict[str, Any]:
            target: Any = state
            for step in path:
                target = target[step]
            del target[key]
            return state

        return apply

    return [
        ("not a dict", lambda s: [s], "must be a dict"),  # pyright: ignore[reportUnknownLambdaType]
        ("wrong type", set_(["type"], "langgraph.checkpoint"), "not a threadline thread state"),
        ("future version", set_(["schema_version"], 99), "schema_version 99, newer"),
        ("version as text", set_(["schema_version"], "1"), "'schema_version' must be an integer"),
        ("unknown field", set_(["surprise"], 1), "unknown field(s) ['surprise']"),
        ("no thread id", drop("thread_id"), "missing required key 'thread_id'"),
        ("null thread id", set_(["thread_id"], None), "'thread_id' is null"),
        ("no store", drop("store"), "missing required key 'store'"),
        ("no user id", drop("user_id"), "missing required key 'user_id'"),
        ("no binding", drop("binding"), "missing required key 'binding'"),
        ("no service id", drop("service_thread_id"), "missing required key 'service_thread_id'"),
        ("no providers", drop("context_providers"), "missing required key 'context_providers'"),
        ("no type", drop("type"), "field 'type' is None"),
        ("no version", drop("schema_version"), "'schema_version' must be an integer, got None"),
        ("no binding key", drop_in(["binding"], "agent_id"), "required key 'binding.agent_id'"),
        ("unknown binding key", set_(["binding", "x"], 1), "'binding' has unknown field(s) ['x']"),
        ("no store kind", drop_in(["store"], "kind"), "missing required key 'store.kind'"),
        ("no store state", drop_in(["store"], "state"), "missing required key 'store.state'"),
        ("null store kind", set_(["store", "kind"], None), "'store.kind' is null"),
        ("user id a number", set_(["user_id"], 7), "user_id must be a non-empty string or null"),
        (
            "both kinds",
            set_(["service_thread_id"], "conv_1"),
            "both 'service_thread_id' and 'store'",
        ),
        ("store not object", set_(["store"], "messages"), "'store' must be an object"),
        (
            "unknown store kind",
            set_(["store", "kind"], "cassandra"),
            "'cassandra', which is not built in",
        ),
        (
            "bad message role",
            set_(["store", "state", "messages", 1, "role"], "robot"),
            "store.state.messages[1]: unknown role 'robot'",
        ),
        (
            "bad content",
            set_(
                ["store", "state", "messages", 0],
                {"role": "user", "contents": [{"type": "hologram"}], "message_id": "m1"},
            ),
            "messages[0]: contents[0]: unknown content type 'hologram'",
        ),
        (
            "text and contents",
            set_(["store", "state", "messages", 0, "contents"], []),
            "messages[0]: a message has either 'text' or 'contents', exactly one of them",
        ),
        (
            "text not a string",
            set_(["store", "state", "messages", 0, "text"], ["hi"]),
            "messages[0]: message field 'text' must be a string",
        ),
        ("messages not a list", set_(["store", "state", "messages"], {"0": "x"}), "must be a list"),
        (
            "provider state not object",
            set_(["context_providers", "Counter"], 3),
            "'context_providers.Counter' must be an object",
        ),
        ("binding not object", set_(["binding"], "agent"), "'binding' must be an object"),
    ]


@pytest.mark.parametrize(
    ("name", "mutate", "message"), _mutations(), ids=[m[0] for m in _mutations()]
)
async def test_malformed_state_is_refused_with_a_clear_error(
    name: str, mutate: Any, message: str
) -> None:
    agent, thread, state = await make_thread()
    bad = mutate(copy.deepcopy(state))
    with pytest.raises(ThreadStateError) as info:
        await agent.deserialize_thread(bad)
    assert message in str(info.value)
    # Nothing was lost: the original thread and its state are intact.
    assert len(await store_of(thread).list_messages()) == 4
    assert len((await agent.deserialize_thread(state)).context_state) == 1


async def test_duplicate_message_ids_in_state_are_refused() -> None:
    agent, _, state = await make_thread()
    messages = state["store"]["state"]["messages"]
    messages.append(copy.deepcopy(messages[0]))
    with pytest.raises(ThreadStateError, match="same message_id more than once"):
        await agent.deserialize_thread(state)


async def test_factory_of_another_kind_is_refused() -> None:
    _, _, state = await make_thread()
    agent = ChatAgent(ScriptedChatClient([]), chat_message_store_factory=TaggedStore)
    with pytest.raises(ThreadStateError, match="holds a 'memory' store, but the agent's"):
        await agent.deserialize_thread(state)


async def test_a_version_1_state_gets_nulls_but_a_bound_one_without_history_is_refused() -> None:
    agent, _, state = await make_thread()
    old = {k: v for k, v in state.items() if k not in ("user_id", "service_thread_id")}
    old["schema_version"] = 1
    old["binding"] = {"agent_id": agent.id}  # version 1 left out empty binding fields
    restored = await agent.deserialize_thread(old)
    assert len(await store_of(restored).list_messages()) == 4
    assert (await restored.serialize())["binding"]["agent_name"] is None

    del old["store"]
    with pytest.raises(ThreadStateError, match="missing required key 'store'.*history was cut"):
        await agent.deserialize_thread(old)
    unbound: dict[str, Any] = {
        "type": "threadline.thread",
        "schema_version": 1,
        "thread_id": "t",
        "binding": {},
    }
    assert (await agent.deserialize_thread(unbound)).id == "t"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["binding", "service"], "", "binding.service must be a non-empty string or null, got ''"),
        (["binding", "agent_name"], 3, "binding.agent_name must be a non-empty string or null"),
        (["service_thread_id"], 5, "service_thread_id must be a non-empty string or null, got 5"),
        (["store", "state"], [], "field 'store.state' must be an object, got []"),
        (["context_providers"], [], "field 'context_providers' must be an object, got []"),
        (["user_id"], "", "user_id must be a non-empty string or null, got ''"),
        (["thread_id"], b"t", "thread_id must be a non-empty string or null, got b't'"),
    ],
)
async def test_each_field_of_the_state_is_checked_by_its_type(
    path: list[str], value: object, message: str
) -> None:
    """The state is validated with pydantic; every refusal still names the field in our words."""
    agent, _, state = await make_thread()
    target = state
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ThreadStateError) as info:
        await agent.deserialize_thread(state)
    assert message in str(info.value)
