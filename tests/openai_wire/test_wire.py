"""The OpenAI wire formats: round trips through each API's JSON and clear refusals of bad items."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from threadline import (
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    MessageFormatError,
    Role,
)
from threadline.openai_wire import (
    chat_to_messages,
    input_message,
    items_to_messages,
    message_object,
    messages_to_chat,
    messages_to_items,
    tool_calls_json,
)

_HISTORY = [
    ChatMessage(Role.USER, "weather in Paris?"),
    ChatMessage(
        Role.ASSISTANT,
        contents=[
            FunctionCallContent(call_id="call_1", name="weather", arguments='{"city": "Paris"}'),
            FunctionCallContent(call_id="call_2", name="weather", arguments='{"city": "Lyon"}'),
        ],
    ),
    ChatMessage(
        Role.TOOL,
        contents=[
            FunctionResultContent(call_id="call_1", result={"sky": "sunny"}),
            FunctionResultContent(call_id="call_2", result="rain"),
        ],
    ),
    ChatMessage(Role.ASSISTANT, "Sunny in Paris, rain in Lyon."),
]


def _shape(messages: list[ChatMessage]) -> list[tuple[Role, str, tuple[object, ...]]]:
    return [(m.role, m.text, m.contents) for m in messages]


def test_responses_items_round_trip_keeps_the_history_shape() -> None:
    items = messages_to_items(_HISTORY)
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]
    assert _shape(items_to_messages(items)) == _shape(_HISTORY)


def test_chat_messages_round_trip_keeps_the_history_shape() -> None:
    chat = messages_to_chat(_HISTORY)
    assert [m["role"] for m in chat] == ["user", "assistant", "tool", "tool", "assistant"]
    assert _shape(chat_to_messages(chat)) == _shape(_HISTORY)


def test_assistants_messages_and_tool_calls() -> None:
    message = input_message({"role": "user", "content": "hi"}, "messages[0]")
    body = message_object(message, "thread_1", created_at=10.0, metadata={"k": "v"})
    assert body["content"] == [{"type": "text", "text": {"value": "hi", "annotations": []}}]
    assert body["thread_id"] == "thread_1" and body["metadata"] == {"k": "v"}
    calls = tool_calls_json([FunctionCallContent(call_id="c", name="f", arguments="{}")])
    assert calls == [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    with pytest.raises(MessageFormatError, match=r"messages\[0\]\.role"):
        input_message({"role": "tool", "content": "hi"}, "messages[0]")


@pytest.mark.parametrize(
    ("items", "where"),
    [
        ([{"type": "function_call", "call_id": 1}], r"input\[0\]\.call_id"),
        ([{"role": "wizard", "content": "x"}], r"input\[0\]\.role"),
        (
            [{"type": "function_call_output", "call_id": "c", "output": "[" * 100_000}],
            r"input\[0\]\.output is JSON nested too deeply",
        ),
    ],
)
def test_malformed_items_name_the_field(items: object, where: str) -> None:
    with pytest.raises(MessageFormatError, match=where):
        items_to_messages(items)


def test_deep_json_in_a_chat_tool_message_names_the_field() -> None:
    messages = [{"role": "tool", "tool_call_id": "c", "content": "[" * 100_000}]
    with pytest.raises(MessageFormatError, match=r"messages\[0\]\.content is JSON nested"):
        chat_to_messages(messages)


_SRC = Path(__file__).resolve().parents[2] / "src" / "threadline"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_wire_formats_sit_below_clients_and_hosting() -> None:
    for path in (_SRC / "openai_wire").rglob("*.py"):
        imported = _imports(path)
        assert not {
            n for n in imported if n.startswith(("threadline.clients", "threadline.hosting"))
        }
        assert "openai" not in {n.split(".")[0] for n in imported}  # no SDK needed by the server
    hosting = _SRC / "hosting"
    for path in hosting.rglob("*.py"):
        imported = _imports(path)
        assert not {n for n in imported if n.startswith("threadline.clients._")}, path
        assert len(path.read_text().splitlines()) < 400, path
    assert not {
        n for n in _imports(hosting / "runs.py") if n.startswith("threadline.hosting.assistants")
    }
