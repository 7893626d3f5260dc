"""The web UI's pages in headless Chromium: threads, transcripts, chat, forks, traces, memories.

Each test makes its data through the official ``openai`` client (the way users make it), then
works the page as a user does (labels, buttons, links) and checks what the page shows, and for
changes, what the API then says. Screenshots of each page go to the test's temporary folder.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.hosting._raw_http import request
from tests.ui.conftest import Served, sign_in
from threadline.hosting._runner import memory_user_id
from threadline.memory import MemoryScope

XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold?</b>'


async def raw(origin: str, method: str, path: str, *, key: str) -> tuple[int, Any]:
    """A UI API call as the page makes it (bearer key); the status and the JSON body."""
    answer = await request(origin, method, path, key=key)
    return answer.status, answer.json()


async def _conversation(served: Served, key: str, *texts: str) -> str:
    """A conversation with one turn per text (scripted replies), made with the openai client."""
    client = served.client(key)
    conversation = await client.conversations.create(
        items=[
            {"type": "message", "role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": '"sunny, 21C"'},
            {"type": "message", "role": "assistant", "content": "Sunny in Paris."},
        ]
    )
    for i, text in enumerate(texts):
        served.model.add_replies(f"scripted answer {i}")
        made = await client.responses.create(conversation=conversation.id, input=text)
        assert made.usage is not None
        spent_in, spent_out = served.usage.get(conversation.id, (0, 0))
        served.usage[conversation.id] = (
            spent_in + made.usage.input_tokens,
            spent_out + made.usage.output_tokens,
        )
    return conversation.id


async def test_list_transcript_chat_fork_and_trace(served: Served, page: Page) -> None:
    conversation = await _conversation(served, "key-alice", "tell me about " + XSS)
    other = await _conversation(served, "key-alice", "an older thread about kiwis")

    await sign_in(page, served)
    items = page.locator("ul.threads li")
    await expect(items).to_have_count(2)
    # Newest first: the thread whose last turn came last is on top.
    assert await items.nth(0).get_attribute("data-thread") == other
    assert "key-alice" not in page.url
    await page.screenshot(path=served.shots / "threads.png")

    # Search by text.
    await page.get_by_label("Search threads").fill("kiwis")
    await page.get_by_role("button", name="Search").click()
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_attribute("data-thread", other)

    await page.goto(f"{served.origin}/ui/threads/{conversation}")
    transcript = page.locator("ol.transcript > li")
    await expect(transcript).to_have_count(6)
    await expect(transcript.nth(4)).to_contain_text("tell me about <img src=x")
    await expect(transcript.nth(5)).to_contain_text("scripted answer 0")
    # Token usage of the thread's responses (the server estimates it for a scripted model).
    spent_in, spent_out = served.usage[conversation]
    assert spent_in > 0
    await expect(page.locator("#usage")).to_have_text(f" · tokens: {spent_in} in, {spent_out} out")
    # Tool calls and results are folded: present, closed until opened.
    call = page.locator("details.call").first
    await expect(call.locator("summary")).to_have_text("Tool call: get_weather")
    await expect(call.locator("pre")).to_be_hidden()
    await call.locator("summary").click()
    await expect(call.locator("pre")).to_contain_text('"city": "Paris"')
    await expect(page.locator("details.result pre").first).to_be_hidden()
    # HTML in a message is text: nothing ran, no element was made from it.
    assert await page.evaluate("window.pwned") is None
    assert (
        await page.locator("ol.transcript img, ol.transcript script, ol.transcript b").count() == 0
    )
    await page.screenshot(path=served.shots / "thread.png", full_page=True)

    # Chat: the reply streams in (several partial texts) and is in the API afterwards.
    served.model.add_replies("a streamed reply in several words")
    served.model.pace = 0.05
    await page.evaluate(
        """() => { window.partials = [];
           new MutationObserver(() => {
             const live = document.getElementById('live-reply');
             if (live) window.partials.push(live.textContent);
           }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    await page.get_by_label("Message", exact=True).fill("and now?")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#live-reply")).to_have_text("a streamed reply in several words")
    partials = await page.evaluate("window.partials")
    assert len({p for p in partials if p}) > 2, partials
    items_now = await served.client().conversations.items.list(conversation, order="asc")
    last = items_now.data[-1].model_dump()
    assert last["content"][0]["text"] == "a streamed reply in several words"

    # Fork after the first message: the branch opens, holding one message, and the source lists it.
    await page.get_by_role("button", name="Fork after message 1", exact=True).click()
    await expect(page.locator("ol.transcript > li")).to_have_count(1)
    branch = page.url.rsplit("/", 1)[1]
    assert branch != conversation
    await expect(page.get_by_text("Forked from")).to_be_visible()
    await page.get_by_role("link", name=conversation).click()
    await expect(page.locator("a.branch")).to_have_text([branch])
    await page.screenshot(path=served.shots / "fork-tree.png")
    await page.locator("a.branch").click()
    await expect(page).to_have_url(f"{served.origin}/ui/threads/{branch}")
    fork_items = await served.client().conversations.items.list(branch)
    assert len(fork_items.data) == 1

    # The trace of a turn: a waterfall with the agent run, the model call and the store work.
    await page.goto(f"{served.origin}/ui/threads/{conversation}")
    await page.get_by_role("button", name="Show traces").click()
    waterfall = page.locator(".waterfall").first
    await expect(waterfall).to_be_visible()
    names = await waterfall.locator(".span-row .name").all_text_contents()
    assert any(n.startswith("invoke_agent") for n in names), names
    assert any(n.startswith("chat") for n in names), names
    assert any(n.startswith("recall") for n in names), names
    await page.screenshot(path=served.shots / "trace.png", full_page=True)
    await waterfall.screenshot(path=served.shots / "waterfall.png")


async def test_memories_search_and_forget(served: Served, page: Page) -> None:
    client = served.client()
    conversation = await client.conversations.create()
    for text in ("I keep bees on the roof", "my sister lives in Lisbon"):
        served.model.add_replies("noted")
        await client.responses.create(conversation=conversation.id, input=text, user="carol")
    scope = MemoryScope(user_id=memory_user_id("alice", "carol"))
    assert len(await served.store.list(scope=scope)) >= 2  # learnt during the turns

    await sign_in(page, served, path="/ui/memories")
    await page.get_by_label("User").fill("carol")
    await page.get_by_label("Search").fill("bees")
    await page.get_by_role("button", name="Show memories").click()
    hits = page.locator("ul.memories li")
    await expect(hits.first).to_contain_text("bees")
    await expect(hits.first.locator(".score")).to_contain_text("score")
    await expect(hits.first.get_by_role("link", name=conversation.id)).to_be_visible()
    await page.screenshot(path=served.shots / "memories.png")
    memory_id = await hits.first.get_attribute("data-memory")
    assert memory_id

    # Forgetting asks first: dismissed, nothing goes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await hits.first.get_by_role("button", name=f"Forget memory {memory_id}").click()
    assert await served.store.get(memory_id, scope=scope) is not None
    page.once("dialog", lambda dialog: dialog.accept())
    await hits.first.get_by_role("button", name=f"Forget memory {memory_id}").click()
    await expect(page.locator(f'[data-memory="{memory_id}"]')).to_have_count(0)
    assert await served.store.get(memory_id, scope=scope) is None
    status, body = await raw(
        served.origin, "GET", "/ui/api/memories?user=carol&q=bees", key="key-alice"
    )
    assert status == 200 and memory_id not in [m["id"] for m in body["memories"]]

    # The whole user, after a confirmation.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Forget this user").click()
    await expect(page.get_by_role("status")).to_contain_text("Forgot")
    assert await served.store.list(scope=scope) == []


async def test_a_second_key_sees_nothing_of_the_first(served: Served, page: Page) -> None:
    mine = await _conversation(served, "key-alice", "alice's secret plan")
    client = served.client()
    served.model.add_replies("ok")
    await client.responses.create(input="alice likes figs", user="dan")

    await sign_in(page, served, key="key-bob")
    await expect(page.get_by_role("status")).to_have_text("0 thread(s)")
    await page.goto(f"{served.origin}/ui/threads/{mine}")
    await expect(page.get_by_role("heading", name="Not found (404)")).to_be_visible()
    await expect(page.get_by_text("alice's secret plan")).to_have_count(0)
    await page.goto(f"{served.origin}/ui/memories?user=dan&q=figs")
    await expect(page.get_by_role("status")).to_have_text("0 memories")
    # The API answers alike: 404 for her thread, nothing for her user, no fork of it.
    for method, path in [
        ("GET", f"/ui/api/threads/{mine}"),
        ("POST", f"/ui/api/threads/{mine}/fork?at=1"),
        ("GET", f"/ui/api/threads/{mine}/traces"),
    ]:
        status, _ = await raw(served.origin, method, path, key="key-bob")
        assert status == 404, (method, path)
    status, body = await raw(served.origin, "GET", "/ui/api/memories?user=dan", key="key-bob")
    assert status == 200 and body["memories"] == []
    status, _ = await raw(served.origin, "GET", "/ui/api/threads", key="wrong-key")
    assert status == 401


async def test_missing_ids_are_404_pages(served: Served, page: Page) -> None:
    await sign_in(page, served)
    await page.goto(f"{served.origin}/ui/threads/conv_does_not_exist")
    await expect(page.get_by_role("heading", name="Not found (404)")).to_be_visible()
    await expect(page.get_by_text("conv_does_not_exist")).to_be_visible()
    await page.screenshot(path=served.shots / "not-found.png")
    status, body = await raw(served.origin, "GET", "/ui/api/threads/conv_nope", key="key-alice")
    assert status == 404 and "conv_nope" in body["error"]["message"]
    status, _ = await raw(
        served.origin, "DELETE", "/ui/api/memories/mem_nope?user=carol", key="key-alice"
    )
    assert status == 404


@pytest.mark.parametrize("width", [375])
async def test_phone_width_and_keyboard(served: Served, page: Page, width: int) -> None:
    conversation = await _conversation(served, "key-alice", "a question")
    await page.set_viewport_size({"width": width, "height": 800})
    await page.goto(served.origin + "/ui/")
    # Keyboard only: tab to the key field, type, Enter; tab to the thread's link, Enter.
    await page.get_by_label("API key").focus()
    await page.keyboard.type("key-alice")
    await page.keyboard.press("Enter")
    link = page.locator("ul.threads a").first
    await expect(link).to_be_visible()
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{served.origin}/ui/threads/{conversation}")
    await expect(page.locator("ol.transcript > li")).to_have_count(6)
    await page.get_by_role("button", name="Show traces").click()
    await expect(page.locator(".waterfall").first).to_be_visible()
    # Nothing wider than the window.
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.screenshot(path=served.shots / "phone.png")
    await page.goto(f"{served.origin}/ui/memories?user=nobody")
    await expect(page.get_by_role("status")).to_have_text("0 memories")
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


async def test_a_10000_message_transcript_loads_in_pages(served: Served, page: Page) -> None:
    client = served.client()
    conversation = await client.conversations.create()
    for start in range(0, 10_000, 1000):  # within the server's body limit per request
        await client.conversations.items.create(
            conversation.id,
            items=[
                {
                    "type": "message",
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"message number {i}",
                }
                for i in range(start, start + 1000)
            ],
        )
    await sign_in(page, served)
    began = time.perf_counter()
    await page.goto(f"{served.origin}/ui/threads/{conversation.id}")
    await expect(page.locator("#shown")).to_have_text("Showing 200 of 10000 messages")
    loaded = time.perf_counter() - began
    print(f"\n10,000-message transcript: first page shown in {loaded * 1000:.0f} ms")
    transcript = page.locator("ol.transcript > li")
    assert await transcript.count() == 200
    await expect(transcript.last).to_contain_text("message number 199")
    began = time.perf_counter()
    await page.get_by_role("button", name="Load more messages").click()
    await expect(page.locator("#shown")).to_have_text("Showing 400 of 10000 messages")
    print(f"next page in {(time.perf_counter() - began) * 1000:.0f} ms")
    await expect(transcript.last).to_contain_text("message number 399")
    # The page stays responsive: a script runs at once.
    assert await page.evaluate("1 + 1") == 2
