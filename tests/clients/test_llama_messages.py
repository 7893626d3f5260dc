"""Our ChatML/Qwen prompts and reading tool calls back out of a reply, without a model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from threadline import tool
from threadline.clients._llama_messages import (
    ReplyParser,
    call_names,
    generation_prompt,
    render_message,
    required_call_prefill,
    to_llama_message,
    tools_section,
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


@tool
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: the city.
    """
    return city


def test_messages_render_as_chatml_in_qwen_form() -> None:
    system = render_message(
        ChatMessage(Role.SYSTEM, "Be brief."), tools=tools_section([get_weather])
    )
    assert system.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '"name": "get_weather"' in system and system.endswith("</tool_call><|im_end|>\n")
    assert render_message(ChatMessage(Role.USER, "hi")) == "<|im_start|>user\nhi<|im_end|>\n"
    assert render_message(CALL) == (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Oslo"}}\n</tool_call><|im_end|>\n'
    )
    result = render_message(RESULT, names=call_names([CALL]))
    assert result.startswith(
        "<|im_start|>user\n<tool_response>\n"
        'get_weather returned: {"sky": "grey"}\n</tool_response>\n'
    )
    assert "Now answer my question in plain words." in result
    failed = ChatMessage(
        Role.TOOL, contents=[FunctionResultContent(call_id="c1", exception="boom")]
    )
    assert "get_weather failed: boom" in render_message(failed, names=call_names([CALL]))
    assert generation_prompt() == "<|im_start|>assistant\n"


def test_contents_without_a_form_are_skipped() -> None:
    image = ChatMessage(Role.USER, contents=[DataContent(data=b"\x89PNG", media_type="image/png")])
    assert render_message(image) == ""
    assert to_llama_message(image, {}) is None
    mixed = ChatMessage(Role.ASSISTANT, contents=[ErrorContent(message="x"), TextContent("ok")])
    assert render_message(mixed) == "<|im_start|>assistant\nok<|im_end|>\n"
    assert to_llama_message(mixed, {}) == {"role": "assistant", "content": "ok"}
    assert to_llama_message(RESULT, call_names([CALL])) == {
        "role": "user",
        "content": '<tool_response>\nget_weather returned: {"sky": "grey"}\n</tool_response>',
    }


def feed_all(parser: ReplyParser, pieces: list[str]) -> str:
    return "".join(parser.feed(p) for p in pieces)


def test_tagged_calls_are_parsed_and_text_before_them_streams() -> None:
    parser = ReplyParser(tool_names=["get_weather"])
    pieces = [
        "Let me check.",
        " <tool",
        "_call>\n",
        '{"name": "get_weather", ',
        '"arguments": {"city": "Oslo"}}',
        "\n</tool_call>",
    ]
    shown = feed_all(parser, pieces)
    assert shown == "Let me check. "
    rest, calls = parser.finish("m")
    assert rest == ""
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("m_0", "get_weather", '{"city": "Oslo"}')
    ]


def test_bare_and_fenced_json_calls_are_recognised() -> None:
    for reply in (
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
        # a repeated call, and one cut off by the token limit
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}\n{"name": "get_w',
    ):
        parser = ReplyParser(tool_names=["get_weather"])
        assert feed_all(parser, [reply[:5], reply[5:]]) == ""  # held until the reply ends
        rest, calls = parser.finish("m")
        assert rest == "" and [c.name for c in calls] == ["get_weather"], reply


def test_json_that_is_not_a_call_is_kept_as_text() -> None:
    for reply in (
        '{"name": "other_tool", "arguments": {}}',  # not an offered tool
        '{"colour": "blue"}',
        "```json\n[1, 2]\n```",
        "<tool_call>\nnot json\n</tool_call>",
    ):
        parser = ReplyParser(tool_names=["get_weather"])
        shown = feed_all(parser, [reply])
        rest, calls = parser.finish("m")
        assert calls == [] and shown + rest == reply


def test_code_fences_in_other_languages_stream_at_once() -> None:
    parser = ReplyParser(tool_names=["get_weather"])
    assert parser.feed("```python\n") == "```python\n"
    assert parser.feed("print(1)") == "print(1)"


def test_without_tools_everything_streams() -> None:
    parser = ReplyParser()
    assert parser.feed('{"name": "get_weather", "arguments": {}}') == (
        '{"name": "get_weather", "arguments": {}}'
    )
    assert parser.finish("m") == ("", [])


@given(st.lists(st.text(alphabet="ab<>_{}tolcal\n `", max_size=12), max_size=8))
def test_no_text_is_ever_lost(pieces: list[str]) -> None:
    parser = ReplyParser(tool_names=["get_weather"])
    shown = feed_all(parser, pieces)
    rest, calls = parser.finish("m")
    if not calls:
        assert shown + rest == "".join(pieces)


def test_a_required_call_is_prefilled() -> None:
    prefill = required_call_prefill([get_weather])
    assert prefill == '<tool_call>\n{"name": "get_weather", "arguments": '
    parser = ReplyParser(prefill, tool_names=["get_weather"])
    assert parser.feed('{"city": "Oslo"}}\n</tool_call>') == ""
    _, calls = parser.finish("m")
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "Oslo"}')]
