"""Cross-key and cross-user isolation of ``threadline serve --memory``: probes, requests, leaks.

Run: python bench/isolation.py [--objects N]

A real ``threadline serve --memory`` (SQLite threads, SQLite memory, two API keys of two
accounts, the web UI on) runs in its own process on a free loopback port, hosting a model that
answers with everything it was sent (``bench/_faults_server.py:echo``): whatever of another
account or user the server put into the model's context comes back in the answer. Each key makes
N conversations (with items and a turn), N ``previous_response_id`` chains and N memory users
(``user0``..``user{N-1}``, the same names under both keys), each telling the model its own secret
word. Then each key probes the other's objects, through the official ``openai`` SDK and raw HTTP
(httpx): read, update, continue, list and delete its conversations, items and responses, use its
``previous_response_id``, ``conversation`` and ``Idempotency-Key``, recall its users' secrets
(same ``user`` name: Responses, streamed Responses, Chat Completions), read, search and delete its
users' memories and threads through ``/ui/api/``, and forget its users. Each user also asks
for the secret of a user of its own key (cross-user).

A probe leaks when a cross access succeeds where it must fail, or when any answer carries a
secret word (or, on success, an object id) of another account, or of another user for recall.
Controls make the probe unable to pass vacuously: each access is repeated by the owner and must
succeed and show the secret (after the destructive probes, so they also prove nothing was
deleted), and the leak check is run on a control's answer as if the other key had received it,
where it must report the leak. Exits non-zero on any leak, failed control or 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import httpx
import openai
from openai.types.responses import EasyInputMessageParam

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _faults_server import SECRET  # noqa: E402 - the bench folder is on the path from here on
from server_faults import free_port, wait_for  # noqa: E402

KEYS = {"iso-key-a": "acct-a", "iso-key-b": "acct-b"}
ASK = "What is my secret word?"
CHAINS = "chains"

Viewer = tuple[str, str | None]
"""Who receives an answer: (API key, request ``user``)."""
Expect = Literal["denied", "allowed"]


class Answer(Protocol):
    """An HTTP answer, from httpx or from the SDK's own HTTP client: all the probes read."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def is_success(self) -> bool: ...
    def json(self, **kwargs: Any) -> Any: ...


class _Raw(Protocol):
    """What the SDK's ``with_raw_response`` calls return: the HTTP response is all we read."""

    @property
    def http_response(self) -> Answer: ...


@dataclass
class Seeded:
    """One key's objects, with the secret words in them."""

    key: str
    conversations: list[str] = field(default_factory=lambda: [])
    items: list[str] = field(default_factory=lambda: [])  # one item per conversation
    conversation_turns: list[str] = field(default_factory=lambda: [])  # response ids
    chains: list[tuple[str, str]] = field(default_factory=lambda: [])  # (first, second) ids
    chain_bodies: list[tuple[str, str]] = field(default_factory=lambda: [])  # (idem key, input)
    secrets: dict[str, str] = field(default_factory=lambda: {})  # user -> secret word
    object_words: list[str] = field(default_factory=lambda: [])  # per object index
    memory_ids: dict[str, str] = field(default_factory=lambda: {})  # user -> a memory id


@dataclass
class Ledger:
    """Who owns which word and id; what each probe saw."""

    owner_of: dict[str, Viewer] = field(default_factory=lambda: {})
    ids: dict[str, str] = field(default_factory=lambda: {})  # object id -> key
    probes: Counter[str] = field(default_factory=lambda: Counter())
    controls: Counter[str] = field(default_factory=lambda: Counter())
    leaks: list[str] = field(default_factory=lambda: [])
    failed_controls: list[str] = field(default_factory=lambda: [])
    errors: list[str] = field(default_factory=lambda: [])
    requests: int = 0
    leaked_kinds: Counter[str] = field(default_factory=lambda: Counter())

    def word(self, viewer: Viewer) -> str:
        word = "sw" + uuid.uuid4().hex[:12]
        self.owner_of[word] = viewer
        return word

    def foreign(self, body: str, viewer: Viewer, *, per_user: bool, ids: bool) -> list[str]:
        """The words (and, with ``ids``, object ids) in ``body`` that ``viewer`` must not see.

        Another key's are always foreign; with ``per_user`` (a recall in a fresh thread) so are
        another user's of the same key, the key's user-less (account) memory included.
        """
        seen: list[str] = []
        for word in SECRET.findall(body):
            owner = self.owner_of.get(word)
            if owner is None:
                continue
            if owner[0] != viewer[0] or (per_user and owner != viewer):
                seen.append(word)
        if ids:
            seen.extend(i for i, key in self.ids.items() if key != viewer[0] and i in body)
        return seen


class Prober:
    """Sends requests as either key and books every answer as a probe or a control."""

    def __init__(self, port: int, ledger: Ledger, concurrency: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ledger = ledger
        self.clients = {
            key: openai.AsyncOpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0)
            for key in KEYS
        }
        self.web = httpx.AsyncClient(base_url=self.base, timeout=60)
        self.gate = asyncio.Semaphore(concurrency)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.web.aclose()

    async def raw(
        self,
        key: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request over raw HTTP (streams are read whole)."""
        async with self.gate:
            self.ledger.requests += 1
            sent = {"authorization": f"Bearer {key}", **(headers or {})}
            return await self.web.request(method, path, json=json, headers=sent)

    async def call(self, key: str, make: Callable[[openai.AsyncOpenAI], Awaitable[_Raw]]) -> Answer:
        """One request through the official SDK; its HTTP response, whatever the status."""
        async with self.gate:
            self.ledger.requests += 1
            try:
                raw = await make(self.clients[key])
            except openai.APIStatusError as exc:
                return exc.response
            return raw.http_response

    def sdk(self, key: str) -> Callable[..., Awaitable[Answer]]:
        """``send(resource, method, *args, **kwargs)``: that SDK call as ``key``.

        ``send("conversations.items", "list", conv)`` is
        ``client.conversations.items.with_raw_response.list(conv)``: one probe a line, at the
        cost of the SDK's argument types (the seeding calls keep them, through :meth:`call`).
        """

        def send(path: str, method: str, *args: Any, **kwargs: Any) -> Awaitable[Answer]:
            def make(client: openai.AsyncOpenAI) -> Awaitable[_Raw]:
                resource: Any = client
                for name in path.split("."):
                    resource = getattr(resource, name)
                return getattr(resource.with_raw_response, method)(*args, **kwargs)

            return self.call(key, make)

        return send

    def http(self, key: str) -> Callable[..., Awaitable[httpx.Response]]:
        """``send(method, path, json=..., headers=...)``: that raw HTTP request as ``key``."""
        return functools.partial(self.raw, key)

    def book(
        self,
        kind: str,
        viewer: Viewer,
        answer: Answer,
        expect: Expect,
        *,
        per_user: bool = False,
        extra: str | None = None,
    ) -> None:
        """A probe: a cross access that must fail (``denied``) or show nothing foreign."""
        self.ledger.probes[kind] += 1
        if answer.status_code >= 500:
            self.ledger.errors.append(f"{kind}: {answer.status_code} {answer.text[:200]}")
            return
        body = answer.text
        found = self.ledger.foreign(body, viewer, per_user=per_user, ids=answer.is_success)
        why: list[str] = []
        if expect == "denied" and answer.is_success:
            why.append(f"answered {answer.status_code}, must fail")
        if found:
            why.append(f"shows {found[:3]}")
        if extra:
            why.append(extra)
        if why:
            self.ledger.leaks.append(f"{kind} as {viewer}: {'; '.join(why)}")
            self.ledger.leaked_kinds[kind] += 1

    def control(self, kind: str, answer: Answer, *must_show: str) -> None:
        """The owner's own access: must succeed and show its words (else the probe is blind)."""
        self.ledger.controls[kind] += 1
        missing = [w for w in must_show if w not in answer.text]
        if not answer.is_success or missing:
            self.ledger.failed_controls.append(
                f"{kind}: {answer.status_code}, missing {missing} in {answer.text[:200]!r}"
            )


def _message(text: str) -> EasyInputMessageParam:
    return {"type": "message", "role": "user", "content": text}


async def seed(p: Prober, key: str, n: int) -> Seeded:
    """The key's objects: N conversations (an item, a turn), N chains, N memory users."""
    s = Seeded(key)
    ledger = p.ledger
    account: Viewer = (key, None)

    async def one(j: int) -> None:
        word = ledger.word(account)
        s.object_words[j] = word
        made = await p.call(
            key,
            lambda c: c.conversations.with_raw_response.create(
                items=[_message(f"Conversation {j} opens with {word}.")], metadata={"j": str(j)}
            ),
        )
        conv = made.json()["id"]
        item = await p.call(
            key,
            lambda c: c.conversations.items.with_raw_response.create(
                conv, items=[_message(f"An item of conversation {j}: {word}.")]
            ),
        )
        turn = await p.call(
            key,
            lambda c: c.responses.with_raw_response.create(
                conversation=conv, input=f"Turn {j} of the conversation, about {word}."
            ),
        )
        idem = f"{key}-chain-{j}"
        first_input = f"Chain {j} starts with {word}."
        # Under a user of its own: the intruder repeats this body (Idempotency-Key probe), and
        # its memory of it must stay out of the users and the account the recall probes ask.
        first = await p.call(
            key,
            lambda c: c.responses.with_raw_response.create(
                input=first_input, user=CHAINS, extra_headers={"Idempotency-Key": idem}
            ),
        )
        first_id = first.json()["id"]
        second = await p.call(
            key,
            lambda c: c.responses.with_raw_response.create(
                previous_response_id=first_id, input=f"Chain {j} goes on with {word}."
            ),
        )
        user = f"user{j}"
        secret = ledger.word((key, user))
        told = await p.call(
            key,
            lambda c: c.responses.with_raw_response.create(
                input=f"My secret word is {secret}.", user=user
            ),
        )
        for answer in (made, item, turn, first, second, told):
            if not answer.is_success:
                ledger.errors.append(f"seed {key} {j}: {answer.status_code} {answer.text[:200]}")
        s.conversations[j] = conv
        s.items[j] = item.json()["data"][0]["id"]
        s.conversation_turns[j] = turn.json()["id"]
        s.chains[j] = (first_id, second.json()["id"])
        s.chain_bodies[j] = (idem, first_input)
        s.secrets[user] = secret
        for object_id in (conv, s.items[j], s.conversation_turns[j], *s.chains[j]):
            ledger.ids[object_id] = key

    s.object_words = [""] * n
    s.conversations, s.items, s.conversation_turns = [""] * n, [""] * n, [""] * n
    s.chains, s.chain_bodies = [("", "")] * n, [("", "")] * n
    await asyncio.gather(*(one(j) for j in range(n)))
    return s


async def wait_learned(p: Prober, s: Seeded, within: float = 120.0) -> None:
    """Until each user's memory holds their secret (learning runs after the turn)."""
    deadline = time.monotonic() + within

    async def one(user: str, secret: str) -> None:
        while True:
            answer = await p.raw(s.key, "GET", f"/ui/api/memories?user={user}")
            body = cast(dict[str, Any], answer.json()) if answer.is_success else {}
            memories = cast(list[dict[str, str]], body.get("memories", []))
            facts = [m for m in memories if m["kind"] == "fact" and secret in m["text"]]
            turns = [m for m in memories if m["kind"] != "fact" and secret in m["text"]]
            if facts and turns:
                s.memory_ids[user] = facts[0]["id"]
                return
            if time.monotonic() > deadline:
                p.ledger.failed_controls.append(f"memory of {s.key}/{user} never learned {secret}")
                return
            await asyncio.sleep(0.2)

    await asyncio.gather(*(one(u, w) for u, w in s.secrets.items()))


Probes = list[tuple[str, Awaitable[Answer]]]
"""(kind, the answer to come): run one after the other, each booked as it comes."""


async def book_all(
    p: Prober, me: Viewer, probes: Probes, expect: Expect, *, per_user: bool = False
) -> None:
    for kind, answer in probes:
        p.book(kind, me, await answer, expect, per_user=per_user)


async def probe_objects(p: Prober, owner: Seeded, intruder: str, j: int) -> None:
    """The intruder at the owner's conversation, item and responses number ``j``."""
    me: Viewer = (intruder, None)
    conv, item = owner.conversations[j], owner.items[j]
    turn, (first, second) = owner.conversation_turns[j], owner.chains[j]
    sdk, http = p.sdk(intruder), p.http(intruder)
    convs, items, responses = "conversations", "conversations.items", "responses"
    went_on = {"input": "Go on.", "stream": True}
    await book_all(
        p,
        me,
        [
            ("conversation: retrieve (SDK)", sdk(convs, "retrieve", conv)),
            ("conversation: update (SDK)", sdk(convs, "update", conv, metadata={"x": "y"})),
            ("items: list (SDK)", sdk(items, "list", conv)),
            ("items: list (HTTP)", http("GET", f"/v1/conversations/{conv}/items?order=asc")),
            ("items: retrieve (SDK)", sdk(items, "retrieve", item, conversation_id=conv)),
            ("items: create (SDK)", sdk(items, "create", conv, items=[_message("intruder")])),
            (
                "conversation: continue (SDK)",
                sdk(responses, "create", conversation=conv, input="Go on."),
            ),
            (
                "conversation: continue streamed (HTTP)",
                http("POST", "/v1/responses", json={"conversation": conv, **went_on}),
            ),
            ("response: retrieve (SDK)", sdk(responses, "retrieve", second)),
            ("response: retrieve conversation turn (HTTP)", http("GET", f"/v1/responses/{turn}")),
            ("response: input items (SDK)", sdk("responses.input_items", "list", second)),
            (
                "response: previous_response_id (SDK)",
                sdk(responses, "create", previous_response_id=second, input="Go on."),
            ),
            (
                "response: previous_response_id streamed (HTTP)",
                http("POST", "/v1/responses", json={"previous_response_id": first, **went_on}),
            ),
            ("ui: thread (HTTP)", http("GET", f"/ui/api/threads/{conv}")),
            ("ui: traces (HTTP)", http("GET", f"/ui/api/threads/{conv}/traces")),
            ("ui: fork (HTTP)", http("POST", f"/ui/api/threads/{conv}/fork?at=1")),
        ],
        "denied",
    )
    word = owner.object_words[j]
    await book_all(
        p, me, [("ui: thread search (HTTP)", http("GET", f"/ui/api/threads?q={word}"))], "allowed"
    )
    # The owner's Idempotency-Key and body, sent by the intruder: a new turn, never the replay.
    idem, body = owner.chain_bodies[j]
    again = await sdk(
        responses, "create", input=body, user=CHAINS, extra_headers={"Idempotency-Key": idem}
    )
    kind = "response: owner's Idempotency-Key (SDK)"
    replayed = again.is_success and again.json().get("id") == first
    p.ledger.probes[kind] += 1
    if replayed or again.status_code >= 400:
        p.ledger.leaks.append(f"{kind} {idem} as {intruder}: {again.status_code}, {replayed=}")
        p.ledger.leaked_kinds[kind] += 1


async def delete_objects(p: Prober, owner: Seeded, intruder: str, j: int) -> None:
    """The intruder deletes the owner's objects number ``j``: controls then find them whole."""
    conv, item = owner.conversations[j], owner.items[j]
    turn, (first, _) = owner.conversation_turns[j], owner.chains[j]
    sdk, http = p.sdk(intruder), p.http(intruder)
    await book_all(
        p,
        (intruder, None),
        [
            (
                "items: delete (SDK)",
                sdk("conversations.items", "delete", item, conversation_id=conv),
            ),
            ("response: delete (SDK)", sdk("responses", "delete", first)),
            ("response: delete (HTTP)", http("DELETE", f"/v1/responses/{turn}")),
            ("conversation: delete (SDK)", sdk("conversations", "delete", conv)),
        ],
        "denied",
    )


def _recall(p: Prober, key: str, user: str | None, how: str) -> Awaitable[Answer]:
    """A fresh turn asking for the secret: Responses, Chat Completions or streamed (raw HTTP)."""
    named = {"user": user} if user else {}
    if how == "chat":
        messages = [{"role": "user", "content": ASK}]
        return p.sdk(key)("chat.completions", "create", model="m", messages=messages, **named)
    if how == "stream":
        return p.http(key)("POST", "/v1/responses", json={"input": ASK, "stream": True, **named})
    return p.sdk(key)("responses", "create", input=ASK, **named)


async def probe_memory(p: Prober, owner: Seeded, intruder: str, user: str) -> None:
    """The intruder as the owner's user name: recall, the UI's memories."""
    http = p.http(intruder)
    secret = owner.secrets[user]
    await book_all(
        p,
        (intruder, user),
        [
            ("recall: same user name (SDK Responses)", _recall(p, intruder, user, "responses")),
            ("recall: same user name (SDK Chat Completions)", _recall(p, intruder, user, "chat")),
            ("recall: same user name, streamed (HTTP)", _recall(p, intruder, user, "stream")),
            ("ui: memories of same user name (HTTP)", http("GET", f"/ui/api/memories?user={user}")),
            (
                "ui: memory search, same user name (HTTP)",
                http("GET", f"/ui/api/memories?user={user}&q=secret+word"),
            ),
            (
                "ui: memory search for the secret (HTTP)",
                http("GET", f"/ui/api/memories?user={user}&q={secret}"),
            ),
        ],
        "allowed",
        per_user=True,
    )


async def forget_memory(p: Prober, owner: Seeded, intruder: str, user: str) -> None:
    """The intruder deletes the owner's memory, forgets its own user of the same name.

    Run for half the users in each direction (see :func:`forgotten_by_intruder`), so the
    owner's users the intruder forgot by name were not forgotten by the owner itself.
    """
    me: Viewer = (intruder, user)
    http = p.http(intruder)
    memory_id = owner.memory_ids.get(user, "none")
    await book_all(
        p,
        me,
        [
            (
                "ui: delete a memory (HTTP)",
                http("DELETE", f"/ui/api/memories/{memory_id}?user={user}"),
            ),
        ],
        "denied",
        per_user=True,
    )
    await book_all(
        p,
        me,
        [
            (
                "users: forget same user name (HTTP)",
                http("POST", "/v1/users/forget", json={"user": user}),
            ),
            ("ui: forget same user name (HTTP)", http("DELETE", f"/ui/api/memories?user={user}")),
        ],
        "allowed",
        per_user=True,
    )


async def probe_neighbour(p: Prober, owner: Seeded, neighbour: str) -> None:
    """Another user of the same key asks for a secret in a fresh thread: only its own."""
    await book_all(
        p,
        (owner.key, neighbour),
        [
            (
                "recall: other user, same key (SDK Responses)",
                _recall(p, owner.key, neighbour, "responses"),
            ),
            (
                "recall: other user, same key (SDK Chat Completions)",
                _recall(p, owner.key, neighbour, "chat"),
            ),
        ],
        "allowed",
        per_user=True,
    )


async def probe_account(p: Prober, intruder: str) -> None:
    """As the intruder: its UI thread list, its account's (user-less) recall."""
    me: Viewer = (intruder, None)
    p.book(
        "ui: thread list (HTTP)", me, await p.http(intruder)("GET", "/ui/api/threads"), "allowed"
    )
    recall = await _recall(p, intruder, None, "responses")
    p.book("recall: account without user (SDK)", me, recall, "allowed", per_user=True)


def forgotten_by_intruder(owner: Seeded, j: int) -> bool:
    """Whether the intruder (not the owner) forgets user ``j``'s name: by parity of the key."""
    return j % 2 != list(KEYS).index(owner.key)


async def controls(p: Prober, s: Seeded, j: int, *, memory: bool = True) -> None:
    """The owner's own accesses succeed and show its words: the probes could see a leak."""
    key, word = s.key, s.object_words[j]
    conv, item, turn = s.conversations[j], s.items[j], s.conversation_turns[j]
    first, second = s.chains[j]
    sdk, http = p.sdk(key), p.http(key)
    checks: list[tuple[str, Awaitable[Answer], tuple[str, ...]]] = [
        ("conversation: retrieve", sdk("conversations", "retrieve", conv), (conv,)),
        ("items: list", sdk("conversations.items", "list", conv), (word, item)),
        (
            "items: retrieve",
            sdk("conversations.items", "retrieve", item, conversation_id=conv),
            (word,),
        ),
        ("response: retrieve", sdk("responses", "retrieve", second), (word,)),
        ("response: conversation turn", http("GET", f"/v1/responses/{turn}"), (word,)),
        ("response: first of chain", http("GET", f"/v1/responses/{first}"), (word,)),
        ("response: input items", sdk("responses.input_items", "list", second), (word,)),
        ("ui: thread", http("GET", f"/ui/api/threads/{conv}"), (word,)),
        ("ui: thread search", http("GET", f"/ui/api/threads?q={word}"), (conv,)),
        ("ui: traces", http("GET", f"/ui/api/threads/{conv}/traces"), ()),
    ]
    user = f"user{j}"
    secret = s.secrets[user]
    if memory:
        checks += [
            ("ui: memories", http("GET", f"/ui/api/memories?user={user}"), (secret,)),
            (
                "ui: memory search",
                http("GET", f"/ui/api/memories?user={user}&q={secret}"),
                (secret,),
            ),
            ("recall: own secret (Chat Completions)", _recall(p, key, user, "chat"), (secret,)),
            ("recall: own secret, streamed", _recall(p, key, user, "stream"), (secret,)),
        ]
    for kind, answer, words in checks:
        p.control(kind, await answer, *words)
    if not memory:
        return
    recall = await _recall(p, key, user, "responses")
    p.control("recall: own secret (Responses)", recall, secret)
    # The leak check itself: the owner's answer, had the other key received it, is a leak.
    other = next(k for k in KEYS if k != key)
    listed = await sdk("conversations.items", "list", conv)
    p.ledger.controls["leak check sees a planted leak"] += 1
    for planted, viewer, per_user in (
        (recall, (other, user), True),
        (recall, (key, f"user{j + 1}"), True),
        (listed, (other, None), False),
    ):
        if not p.ledger.foreign(planted.text, viewer, per_user=per_user, ids=True):
            p.ledger.failed_controls.append(
                f"leak check blind to {planted.text[:120]!r} as {viewer}"
            )


def start_server(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """``threadline serve _faults_server:echo --memory`` with both keys, as users run it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE)]),
        "THREADLINE_HOME": str(tmp / "home"),
    }
    keys = [arg for key, account in KEYS.items() for arg in ("--api-key", f"{key}={account}")]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "serve",
            "_faults_server:echo",
            "--port",
            str(port),
            "--store",
            f"sqlite:{tmp / 'threads.db'}",
            "--memory",
            str(tmp / "memory.sqlite3"),
            *keys,
            "--log-level",
            "error",
        ],
        env=env,
    )


async def run(port: int, n: int, concurrency: int) -> tuple[Ledger, float]:
    ledger = Ledger()
    p = Prober(port, ledger, concurrency)
    started = time.perf_counter()
    try:
        seeded = list(await asyncio.gather(*(seed(p, key, n) for key in KEYS)))
        await asyncio.gather(*(wait_learned(p, s) for s in seeded))
        work: list[Awaitable[None]] = []
        for owner in seeded:
            for intruder in (k for k in KEYS if k != owner.key):
                work += [probe_objects(p, owner, intruder, j) for j in range(n)]
                work += [probe_memory(p, owner, intruder, u) for u in owner.secrets]
            users = list(owner.secrets)
            work += [
                probe_neighbour(p, owner, users[(i + 1) % len(users)]) for i in range(len(users))
            ]
        work += [probe_account(p, key) for key in KEYS]
        await asyncio.gather(*work)
        await asyncio.gather(*(controls(p, s, j) for s in seeded for j in range(n)))
        # Destructive probes, then the controls again: the owner's objects and memories whole.
        work = []
        for owner in seeded:
            for intruder in (k for k in KEYS if k != owner.key):
                work += [delete_objects(p, owner, intruder, j) for j in range(n)]
                work += [
                    forget_memory(p, owner, intruder, f"user{j}")
                    for j in range(n)
                    if forgotten_by_intruder(owner, j)
                ]
        await asyncio.gather(*work)
        await asyncio.gather(
            *(
                controls(p, s, j, memory=forgotten_by_intruder(s, j))
                for s in seeded
                for j in range(n)
            )
        )
    finally:
        await p.aclose()
    return ledger, time.perf_counter() - started


def report(ledger: Ledger, n: int, elapsed: float) -> int:
    print(
        f"\nthreadline serve --memory, {len(KEYS)} keys, {n} objects and users per key, "
        f"{elapsed:.0f} s"
    )
    print(f"{'probe':<52}{'probes':>8}{'leaks':>7}")
    for kind, count in sorted(ledger.probes.items()):
        print(f"{kind:<52}{count:>8}{ledger.leaked_kinds[kind]:>7}")
    probes = sum(ledger.probes.values())
    controls = sum(ledger.controls.values())
    print(
        f"\nprobes {probes}, requests {ledger.requests}, leaks {len(ledger.leaks)} (target 0); "
        f"controls {controls}, failed {len(ledger.failed_controls)} (target 0); "
        f"5xx {len(ledger.errors)} (target 0)"
    )
    for title, lines in (
        ("LEAK", ledger.leaks),
        ("FAILED CONTROL", ledger.failed_controls),
        ("ERROR", ledger.errors),
    ):
        for line in lines[:20]:
            print(f"{title}: {line}")
    return 1 if ledger.leaks or ledger.failed_controls or ledger.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--objects", type=int, default=20, help="objects and users per key (20)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    args = parser.parse_args(argv)
    if args.objects < 2:
        parser.error("--objects must be 2 or more (a user asks another user's secret)")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp))
        try:
            wait_for(port)
            ledger, elapsed = asyncio.run(run(port, args.objects, args.concurrency))
        finally:
            server.terminate()
            server.wait()
    return report(ledger, args.objects, elapsed)


if __name__ == "__main__":
    sys.exit(main())
