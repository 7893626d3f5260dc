"""compacted_view: what a model is sent of a compacted thread; split_turns; the summary's JSON."""

from __future__ import annotations

from threadline import ChatMessage, CompactionContent, Role, TextContent, compacted_view
from threadline.compaction import split_turns
from threadline.types.contents import FunctionCallContent, FunctionResultContent


def _summary(text: str, replaces: list[ChatMessage], previous: ChatMessage | None = None):
    return ChatMessage(
        Role.SYSTEM,
        contents=[
            TextContent(text),
            CompactionContent(
                replaces=tuple(m.message_id for m in replaces),
                previous=previous.message_id if previous is not None else None,
                method="extractive",
            ),
        ],
    )


def test_a_thread_without_summary_is_sent_as_it_is() -> None:
    messages = [ChatMessage(Role.USER, "hi"), ChatMessage(Role.ASSISTANT, "hello")]
    assert compacted_view(messages) is messages


def test_the_latest_summary_stands_first_for_what_it_and_its_chain_replace() -> None:
    u1, a1, u2, a2, u3, a3 = (
        ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"m{i}") for i in range(6)
    )
    s1 = _summary("first", [u1, a1])  # stored after a2: the turn that made it came next
    u4, a4 = ChatMessage(Role.USER, "m6"), ChatMessage(Role.ASSISTANT, "m7")
    s2 = _summary("second", [u2, a2, u3, a3], previous=s1)
    stored = [u1, a1, u2, a2, s1, u3, a3, s2, u4, a4]

    assert [m.text for m in compacted_view(stored)] == ["second", "m6", "m7"]
    # Before the second summary (a fork there, say), the first one applies.
    assert [m.text for m in compacted_view(stored[:7])] == ["first", "m2", "m3", "m4", "m5"]


def test_a_summary_naming_no_message_of_the_thread_keeps_them_all() -> None:
    u1, a1 = ChatMessage(Role.USER, "m0"), ChatMessage(Role.ASSISTANT, "m1")
    s1 = ChatMessage(
        Role.SYSTEM,
        contents=[TextContent("s"), CompactionContent(replaces=("gone",), previous="x")],
    )
    assert [m.text for m in compacted_view([u1, a1, s1])] == ["s", "m0", "m1"]


def test_turns_start_at_user_messages_and_never_split_a_tool_call_from_its_result() -> None:
    call = FunctionCallContent(call_id="c1", name="weather", arguments="{}")
    messages = [
        ChatMessage(Role.ASSISTANT, "welcome"),
        ChatMessage(Role.USER, "weather?"),
        ChatMessage(Role.ASSISTANT, contents=[call]),
        ChatMessage(Role.USER, "(an interjection inside the exchange)"),
        ChatMessage(Role.TOOL, contents=[FunctionResultContent(call_id="c1", result="sun")]),
        ChatMessage(Role.ASSISTANT, "sunny"),
        ChatMessage(Role.USER, "thanks"),
    ]
    turns = split_turns(messages)
    assert [len(t) for t in turns] == [1, 5, 1]


def test_a_summary_round_trips_through_its_json_form() -> None:
    u1 = ChatMessage(Role.USER, "my name is Ann")
    summary = _summary("Ann", [u1])
    assert ChatMessage.from_dict(summary.to_dict()) == summary
    assert summary.to_dict()["contents"][1] == {  # type: ignore[index]
        "type": "compaction",
        "replaces": [u1.message_id],
        "method": "extractive",
    }
