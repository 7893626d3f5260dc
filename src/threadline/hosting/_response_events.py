"""Responses streaming events: built from agent updates, or replayed from a stored response.

Each method returns the events (framed SSE bytes) for one step, numbered in order; the caller joins
the ones made together into one write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from threadline.hosting._sse import sse
from threadline.openai_wire import messages_to_items
from threadline.types.contents import FunctionApprovalRequestContent, FunctionCallContent
from threadline.types.messages import ChatMessage, Role

__all__ = ["ResponseEventWriter", "replay_events"]


class ResponseEventWriter:
    """Turns agent updates into the Responses streaming events, in order."""

    def __init__(self) -> None:
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._text_item: dict[str, Any] | None = None
        self._text: list[str] = []

    def event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return sse(payload, kind)

    def text(self, message_id: str, delta: str) -> list[bytes]:
        events: list[bytes] = []
        if self._text_item is not None and self._text_item["id"] != message_id:
            events += self.close_text()
        if self._text_item is None:
            self._text_item = {
                "type": "message",
                "id": message_id,
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            index = len(self.output)
            self.output.append(self._text_item)
            events.append(
                self.event(
                    "response.output_item.added", output_index=index, item=dict(self._text_item)
                )
            )
            events.append(
                self.event(
                    "response.content_part.added",
                    item_id=message_id,
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            )
        self._text.append(delta)
        events.append(
            self.event(
                "response.output_text.delta",
                item_id=message_id,
                output_index=len(self.output) - 1,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return events

    def close_text(self) -> list[bytes]:
        item = self._text_item
        if item is None:
            return []
        index = len(self.output) - 1
        text = "".join(self._text)
        part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
        item["content"] = [part]
        item["status"] = "completed"
        self._text_item = None
        self._text = []
        return [
            self.event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            self.event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def approval(self, request: FunctionApprovalRequestContent) -> list[bytes]:
        """A call waiting for approval, as one whole ``mcp_approval_request`` output item."""
        events = self.close_text()
        item = messages_to_items([ChatMessage(Role.ASSISTANT, contents=[request])], output=True)[0]
        index = len(self.output)
        self.output.append(item)
        return [
            *events,
            self.event("response.output_item.added", output_index=index, item=item),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def call(self, message: ChatMessage, call: FunctionCallContent) -> list[bytes]:
        events = self.close_text()
        item = messages_to_items(
            [ChatMessage(Role.ASSISTANT, contents=[call], message_id=message.message_id)],
            output=True,
        )[0]
        index = len(self.output)
        self.output.append(item)
        started = {**item, "arguments": "", "status": "in_progress"}
        events += [
            self.event("response.output_item.added", output_index=index, item=started),
            self.event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=index,
                delta=call.arguments,
            ),
            self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=call.arguments,
                name=call.name,
            ),
            self.event("response.output_item.done", output_index=index, item=item),
        ]
        return events


async def replay_events(response: dict[str, Any]) -> AsyncIterator[bytes]:
    """The events of a stored response, for a retried stream whose first attempt completed."""
    writer = ResponseEventWriter()
    started: dict[str, Any] = {**response, "status": "in_progress", "output": [], "usage": None}
    yield writer.event("response.created", response=started) + writer.event(
        "response.in_progress", response=started
    )
    events: list[bytes] = []
    for item in response.get("output", []):
        if item.get("type") == "message":
            text = "".join(p.get("text", "") for p in item.get("content", []))
            events += writer.text(item["id"], text)
            events += writer.close_text()
        elif item.get("type") == "function_call":
            call = FunctionCallContent(
                call_id=item["call_id"], name=item["name"], arguments=item["arguments"]
            )
            events += writer.call(ChatMessage(Role.ASSISTANT, contents=[call]), call)
    yield b"".join(events) + writer.event("response.completed", response=response)
