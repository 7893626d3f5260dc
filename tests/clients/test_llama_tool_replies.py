"""How the small model's unusable tool replies are recognised and cleaned (issue 21, item 6).

The replies are the ones ``bench/tools.py`` saw from the default model; the whole loop with the
real model (answer again without tools) is measured there and tested in ``test_local.py``.
"""

from __future__ import annotations

from threadline.clients._llama_tool_replies import (
    grounded_calls,
    keep_known_arguments,
    looks_like_call,
)
from threadline.tools import as_tool
from threadline.types.contents import FunctionCallContent


def get_time(timezone: str) -> str:
    """Get the current local time.

    Args:
        timezone: an IANA zone or a city.
    """
    return timezone


def call(name: str, arguments: str) -> FunctionCallContent:
    return FunctionCallContent(call_id="c1", name=name, arguments=arguments)


def test_call_and_schema_json_is_recognised_and_prose_is_not() -> None:
    assert looks_like_call('{"name": "Buddy", "arguments": {"properties": {}}}')
    assert looks_like_call('```json\n{"name": "good morning", "arguments": {"city": "Paris"}}\n```')
    assert looks_like_call('<tool_call>\n{"name": "x"')
    assert not looks_like_call("Buenos días!")
    assert not looks_like_call('{"answer": 4}')  # JSON, but nothing like a call
    assert not looks_like_call("Here is JSON: {}")


def test_arguments_the_schema_does_not_name_are_dropped() -> None:
    tool = as_tool(get_time)
    cleaned = keep_known_arguments(
        [call("get_time", '{"timezone": "Asia/Tokyo", "required": ["timezone"]}')], [tool]
    )
    assert cleaned[0].arguments == '{"timezone": "Asia/Tokyo"}'
    kept = keep_known_arguments([call("other", '{"a": 1}')], [tool])  # unknown tool: untouched
    assert kept[0].arguments == '{"a": 1}'


def test_a_call_of_nothing_the_user_said_is_not_grounded() -> None:
    weather = [call("get_weather", '{"city": "Paris"}')]
    assert not grounded_calls(weather, ["What is 2 + 2?"])
    assert grounded_calls(weather, ["Is it raining in Paris?"])
    assert grounded_calls(
        [call("get_time", '{"timezone": "America/New_York"}')], ["Time in New York?"]
    )
    assert grounded_calls([call("ping", "{}")], ["Anything"])  # no arguments: nothing to check
