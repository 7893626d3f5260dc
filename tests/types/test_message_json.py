"""The stable JSON form of messages and contents: lossless round trips and clear refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline import (
    ChatAgent,
    ChatMessage,
    ChatMessageList,
    Content,
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    MessageFormatError,
    Role,
    ScriptedChatClient,
    TextContent,
    UriContent,
    UsageContent,
    UsageDetails,
)
from threadline.threads.thread import AgentThread
from threadline.types.messages import messages_from_dicts, messages_to_dicts

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
ids = st.text(min_size=1, max_size=16)
optional_int = st.none() | st.integers(0, 10**9)

contents: st.SearchStrategy[Content] = st.one_of(
    st.builds(TextContent, st.text()),
    st.builds(
        FunctionCallContent,
        call_id=ids,
        name=ids,
        arguments=st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(json.dumps),
    ),
    st.builds(
        FunctionResultContent, call_id=ids, result=json_values, exception=st.none() | st.text()
    ),
    st.builds(
        DataContent,
        data=st.binary(max_size=64),
        media_type=st.sampled_from(["image/png", "application/pdf"]),
    ),
    st.builds(UriContent, uri=st.text(min_size=1), media_type=st.none() | st.just("image/jpeg")),
    st.builds(
        UsageContent,
        st.builds(
            UsageDetails,
            input_token_count=optional_int,
            output_token_count=optional_int,
            total_token_count=optional_int,
        ),
    ),
    st.builds(
        ErrorContent, message=st.text(), error_code=st.none() | ids, details=st.none() | st.text()
    ),
)
messages = st.builds(
    ChatMessage,
    role=st.sampled_from(list(Role)),
    contents=st.lists(contents, max_size=4),
    author_name=st.none() | ids,
    message_id=st.none() | ids,
)


@given(messages)
def test_every_message_survives_a_json_round_trip(message: ChatMessage) -> None:
    wire = json.dumps(message.to_dict())
    assert ChatMessage.from_dict(json.loads(wire)) == message
    # The form is stable: encoding the decoded message gives the same text.
    assert json.dumps(ChatMessage.from_dict(json.loads(wire)).to_dict()) == wire


@given(st.lists(messages, max_size=8, unique_by=lambda m: m.message_id))
def test_whole_threads_encode_and_decode_as_their_messages_do(batch: list[ChatMessage]) -> None:
    """The bulk forms (used for whole threads) say exactly what the per-message forms say."""
    dicts = messages_to_dicts(batch)
    assert dicts == [m.to_dict() for m in batch]
    assert messages_from_dicts(json.loads(json.dumps(dicts))) == batch


def test_bulk_decoding_names_the_bad_item_and_refuses_repeated_ids() -> None:
    good = {"role": "user", "text": "hi", "message_id": "m1"}
    with pytest.raises(MessageFormatError, match=r"^\[1\]: unknown role 'robot'"):
        messages_from_dicts([good, {**good, "role": "robot", "message_id": "m2"}])
    with pytest.raises(MessageFormatError, match=r"^\[0\]: message field 'text'"):
        messages_from_dicts([{**good, "text": 5}])
    with pytest.raises(MessageFormatError, match="same message_id"):
        messages_from_dicts([good, good])


@settings(max_examples=40)
@given(
    st.lists(messages, max_size=8, unique_by=lambda m: m.message_id),
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        max_size=3,
    ),
)
async def test_every_thread_survives_serialize_and_deserialize(
    history: list[ChatMessage], provider_state: dict[str, dict[str, Any]]
) -> None:
    agent = ChatAgent(ScriptedChatClient([]))
    thread = AgentThread(message_store=ChatMessageList(history))
    thread.context_state = provider_state
    state = json.loads(json.dumps(await thread.serialize()))
    restored = await agent.deserialize_thread(state)
    assert restored.message_store is not None
    assert await restored.message_store.list_messages() == history
    assert restored.context_state == provider_state
    assert json.loads(json.dumps(await restored.serialize())) == state


def test_one_text_content_uses_the_text_form_and_others_the_contents_form() -> None:
    plain = ChatMessage(Role.USER, "hi", message_id="m1", author_name="bob")
    assert plain.to_dict() == {
        "role": "user",
        "text": "hi",
        "message_id": "m1",
        "author_name": "bob",
    }
    # The same value built from contents encodes the same way: one form per message.
    assert (
        ChatMessage(
            "user", contents=[TextContent("hi")], message_id="m1", author_name="bob"
        ).to_dict()
        == plain.to_dict()
    )
    two = ChatMessage(Role.ASSISTANT, "b", contents=[TextContent("a")], message_id="m2")
    assert two.to_dict() == {
        "role": "assistant",
        "contents": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "message_id": "m2",
    }
    empty = ChatMessage(Role.ASSISTANT, message_id="m3")
    assert empty.to_dict() == {"role": "assistant", "contents": [], "message_id": "m3"}
    for message in (plain, two, empty):
        assert ChatMessage.from_dict(message.to_dict()) == message


def test_text_shorthand_and_text_property() -> None:
    message = ChatMessage("user", "hello", contents=[TextContent("first")])
    assert message.role is Role.USER and message.role == "user"
    assert [c.text for c in message.contents if isinstance(c, TextContent)] == ["first", "hello"]
    assert message.text == "first hello"
    assert ChatMessage(Role.ASSISTANT).text == ""
    assert (
        message.message_id.startswith("msg_")
        and message.message_id != ChatMessage("user", "hello").message_id
    )


def test_messages_are_immutable() -> None:
    message = ChatMessage(Role.USER, "hi")
    with pytest.raises(AttributeError):
        message.role = Role.SYSTEM  # pyright: ignore[reportAttributeAccessIssue]
    assert hash(message) == hash(ChatMessage(Role.USER, "hi", message_id=message.message_id))


def test_function_call_arguments_from_a_mapping_are_encoded_once() -> None:
    call = FunctionCallContent(call_id="c", name="f", arguments={"a": 1})  # pyright: ignore[reportArgumentType]
    assert call.arguments == '{"a": 1}' and call.parse_arguments() == {"a": 1}
    assert FunctionCallContent(call_id="c", name="f", arguments="").parse_arguments() == {}


MALFORMED: list[tuple[object, str]] = [
    ("text", "must be a JSON object, got str"),
    (
        {"role": "user", "contents": [], "message_id": "m", "mood": "happy"},
        "unknown field(s) ['mood']",
    ),
    ({"role": "user", "contents": "hi", "message_id": "m"}, "'contents' must be a list"),
    ({"role": "user", "contents": []}, "'message_id' must be a non-empty string"),
    ({"role": "user", "message_id": "m"}, "either 'text' or 'contents', exactly one"),
    ({"role": "user", "text": "a", "contents": [], "message_id": "m"}, "exactly one of them"),
    ({"role": "user", "text": 5, "message_id": "m"}, "'text' must be a string, got 5"),
    ({"role": "bot", "text": "a", "message_id": "m"}, "unknown role 'bot'"),
    ({"role": ["user"], "text": "a", "message_id": "m"}, "'role' must be a string"),
    ({"role": "user", "text": "a", "message_id": ""}, "'message_id' must be a non-empty"),
    ({"role": 3, "contents": [], "message_id": "m"}, "'role' must be a string"),
    ({"role": "robot", "contents": [], "message_id": "m"}, "unknown role 'robot'"),
    (
        {"role": "user", "contents": [], "message_id": "m", "author_name": 5},
        "'author_name' must be a string",
    ),
    (
        {"role": "user", "contents": [{"type": "text"}], "message_id": "m"},
        "contents[0]: content of type 'text'",
    ),
    (
        {"role": "user", "contents": [{"type": "data", "uri": "http://x"}], "message_id": "m"},
        "expected a base64 data: URI",
    ),
    (
        {
            "role": "user",
            "contents": [{"type": "data", "uri": "data:a/b;base64,!!"}],
            "message_id": "m",
        },
        "not valid base64",
    ),
    (
        {
            "role": "user",
            "contents": [{"type": "usage", "input_token_count": True}],
            "message_id": "m",
        },
        "'input_token_count' must be int",
    ),
    (
        {
            "role": "user",
            "contents": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}],
            "message_id": "m",
        },
        "'arguments' must be str",
    ),
]


@pytest.mark.parametrize(("raw", "message"), MALFORMED)
def test_malformed_json_is_refused_naming_the_field(raw: object, message: str) -> None:
    with pytest.raises(MessageFormatError) as info:
        ChatMessage.from_dict(raw)
    assert message in str(info.value)


def test_unknown_role_in_constructor() -> None:
    with pytest.raises(MessageFormatError, match="unknown role 'boss'; expected one of user"):
        ChatMessage("boss", "hi")
