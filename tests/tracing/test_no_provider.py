"""Without a configured tracer provider nothing is recorded, nothing fails, runs are unchanged."""

from __future__ import annotations

import json

from opentelemetry import trace

from tests._otel import reset_globals
from threadline import ChatAgent, FunctionCallContent, GroupChat, ScriptedChatClient
from threadline import _tracing as tr


async def test_no_provider_no_spans_and_no_errors() -> None:
    reset_globals()  # whatever an earlier test configured
    assert not tr.tracing_on()
    seen: list[bool] = []

    def probe(x: int) -> int:
        """Reports whether a span is recording while it runs."""
        seen.append(trace.get_current_span().is_recording())
        return x

    call = FunctionCallContent(call_id="c", name="probe", arguments=json.dumps({"x": 1}))
    agent = ChatAgent(ScriptedChatClient([[call], "done"]), name="a", tools=[probe])
    thread = agent.get_new_thread(user_id="u")
    assert (await agent.run("go", thread=thread)).text == "done"
    streamed = ChatAgent(ScriptedChatClient(["streamed answer"]), name="s")
    assert "".join([u.text async for u in streamed.run_stream("go")]) == "streamed answer"
    chat = GroupChat(
        [
            ChatAgent(ScriptedChatClient(["x"]), name="one"),
            ChatAgent(ScriptedChatClient(["y"]), name="two"),
        ],
        max_rounds=2,
    )
    assert (await chat.run("hi")).text == "x\ny"
    assert seen == [False]
    assert tr.start_span("anything") is None
    assert not trace.get_current_span().is_recording()
