"""The message mapping for llama.cpp, without a model."""

from __future__ import annotations

from threadline.clients._llama_messages import (
    ToolCallAccumulator,
    call_names,
    render_for_count,
    to_llama_message,
)
from threadline.types import (
    ChatMessage,
    DataContent,
    ErrorContent,
    FunctionCallContent,
    FunctionResultContent,
    Role,
    TextContent,
)

CALL = ChatMessage(
    Role.ASSISTANT,
    contents=[FunctionCallContent(call_id="c1", name="get_weather", arguments='{"city": "Oslo"}')],
)
RESULT = ChatMessage(
    Role.TOOL, contents=[FunctionResultContent(call_id="c1", result={"sky": "grey"})]
)


def test_plain_messages_keep_role_and_text() -> None:
    names: dict[str, str] = {}
    user = ChatMessage(Role.USER, "hi")
    assert to_llama_message(user, names, native_tool_calls=False) == {
        "role": "user",
        "content": "hi",
    }


def test_calls_become_native_tool_calls_or_text() -> None:
    names = call_names([CALL])
    native = to_llama_message(CALL, names, native_tool_calls=True)
    assert native is not None
    assert native["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    text = to_llama_message(CALL, names, native_tool_calls=False)
    assert text == {"role": "assistant", "content": 'functions.get_weather:\n{"city": "Oslo"}'}


def test_results_go_back_as_user_text_naming_the_function() -> None:
    names = call_names([CALL])
    converted = to_llama_message(RESULT, names, native_tool_calls=True)
    assert converted == {
        "role": "user",
        "content": 'functions.get_weather returned:\n{"sky": "grey"}',
    }
    failed = ChatMessage(
        Role.TOOL, contents=[FunctionResultContent(call_id="c1", exception="boom")]
    )
    converted = to_llama_message(failed, names, native_tool_calls=False)
    assert converted is not None and "failed:\nboom" in converted["content"]


def test_contents_without_a_form_are_skipped() -> None:
    image = ChatMessage(Role.USER, contents=[DataContent(data=b"\x89PNG", media_type="image/png")])
    assert to_llama_message(image, {}, native_tool_calls=False) is None
    mixed = ChatMessage(Role.ASSISTANT, contents=[ErrorContent(message="x"), TextContent("ok")])
    assert to_llama_message(mixed, {}, native_tool_calls=False) == {
        "role": "assistant",
        "content": "ok",
    }


def test_render_for_count_includes_calls() -> None:
    native = to_llama_message(CALL, call_names([CALL]), native_tool_calls=True)
    assert native is not None
    rendered = render_for_count(native)
    assert rendered.startswith("<|im_start|>assistant\n") and "get_weather" in rendered


def test_streamed_call_pieces_are_joined_whole() -> None:
    acc = ToolCallAccumulator()
    acc.add([{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a":'}}])
    acc.add([{"index": 0, "function": {"name": "f", "arguments": " 1}"}}])
    acc.add([{"index": 1, "function": {"name": "g", "arguments": ""}}])
    calls = acc.calls(fallback_id="msg")
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_1", "f", '{"a": 1}'),
        ("msg_1", "g", "{}"),
    ]
