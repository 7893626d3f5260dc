"""Spans of multi-agent runs: one per run, one per speaker's turn, one per manager's choice.

A group chat, sequential process or handoff run is one trace: the run's span holds a
``select_speaker`` span for each choice of the manager and a ``turn {speaker}`` span for each
turn, under which the speaker's ``invoke_agent`` and the relay to the others nest. A handoff's
turn says who handed the conversation to whom (``threadline.handoff.from``/``to``).
"""

from __future__ import annotations

from threadline import _tracing as tr
from threadline.multiagent.thread import MultiAgentThread

__all__ = ["run_span", "turn_span"]


def run_span(
    kind: str, name: str | None, thread: MultiAgentThread, *, stream: bool
) -> tr.Span | None:
    """Start the span of one ``run``/``run_stream`` of a runner (``group_chat triage``, ...)."""
    span = tr.start_span(f"{kind} {name}" if name else kind, keep_unsampled=True)
    if span is not None:
        tr.set_if(
            span,
            {
                tr.RUNNER_KIND: kind,
                tr.AGENT_NAME: name,
                tr.CONVERSATION_ID: thread.id,
                tr.USER_ID: thread.user_id,
                "threadline.stream": stream,
            },
        )
    return span


def turn_span(kind: str, speaker: str, thread: MultiAgentThread) -> tr.Span | None:
    """Start ``turn {speaker}`` under the current span (the run's)."""
    span = tr.start_span(f"turn {speaker}")
    if span is not None:
        span.set_attribute(tr.RUNNER_KIND, kind)
        span.set_attribute(tr.SPEAKER, speaker)
        span.set_attribute(tr.CONVERSATION_ID, thread.id)
        span.set_attribute("threadline.multiagent.round", thread.rounds_used + 1)
    return span
