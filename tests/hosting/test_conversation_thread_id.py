"""A turn in a conversation runs on a thread named by the conversation (regression, issue 17).

The hosted agent used to run on an ``AgentThread`` with a fresh random id over the conversation's
store, so its spans (``gen_ai.conversation.id``) and the memories it learnt (their source thread)
named a thread no client and no page could find.
"""

from __future__ import annotations

from pathlib import Path

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests._otel import reset_globals
from tests.hosting.conftest import KEYS, start_server
from threadline import ChatAgent, ScriptedChatClient
from threadline.hosting import ServerConfig
from threadline.hosting._runner import memory_user_id
from threadline.memory import ConversationMemory, MemoryScope, SQLiteMemoryStore


async def test_spans_and_memories_name_the_conversation(tmp_path: Path) -> None:
    reset_globals()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    store = SQLiteMemoryStore(tmp_path / "memory.sqlite3", embedder=None)
    model = ScriptedChatClient(["noted"])
    agent = ChatAgent(model, context_providers=[ConversationMemory(store)])
    config = ServerConfig(api_keys=KEYS, db_path=str(tmp_path / "server.db"))
    uv, task, url = await start_server(agent, config)
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="key-alice") as client:
            conversation = await client.conversations.create()
            await client.responses.create(
                conversation=conversation.id, input="I keep bees", user="carol"
            )
        runs = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent")]
        assert [(s.attributes or {}).get("gen_ai.conversation.id") for s in runs] == [
            conversation.id
        ]
        scope = MemoryScope(user_id=memory_user_id("alice", "carol"))
        records = await store.list(scope=scope)
        assert records and {r.thread_id for r in records} == {conversation.id}
    finally:
        uv.should_exit = True
        await task
        await store.aclose()
        provider.shutdown()
        reset_globals()
