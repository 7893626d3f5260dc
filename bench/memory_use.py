"""Does the chat's model *use* what memory gives it? Scenarios with the embedded model.

Run: ``OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src python bench/memory_use.py`` (about 6 minutes a
wording on 2 cores; ``--model qwen-1.5b`` for the larger model, ``-v`` to read every reply).

Recall benchmarks (``bench/memory.py``) measure whether memory finds the right text; this one
measures the step after it, with the default local model and the chat's own set-up
(``memory_cmd.chat_memory``: facts pinned in the thread's instructions, past turns as a
background message, the default instructions of ``threadline chat``). Each scenario stores facts
about the user, asks one question in a new chat and checks the reply with plain rules:

* **uses**: the reply says what the facts imply ("Where do I live?" names Porto);
* **respects**: the reply does not contradict them (no chicken for a vegetarian);
* **quiet**: a question the facts have nothing to do with gets no mention of them;
* **voice**: the model speaks to the user, not as the user ("I am vegetarian") nor of them
  ("The user lives in Porto.").

Every scenario runs with several sampling seeds at the model's default sampling, as a chat does.
``--variants`` also runs other wordings of the memory block (how the block is introduced to the
model), so a wording is chosen by this table, not by one chat.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from threadline.agents.chat_agent import ChatAgent
from threadline.cli import memory_cmd
from threadline.cli.chat import DEFAULT_INSTRUCTIONS
from threadline.clients.local import LocalChatClient
from threadline.memory import (
    MemoryStore,
    UserPreferencesMemory,
    _background,
    open_memory_store,
    preferences,
)
from threadline.memory.preferences import ExtractedFact

USER = "ada"
VEGETARIAN = ExtractedFact("diet", "The user is vegetarian.", "preference")
PORTO = ExtractedFact("home_city", "The user lives in Porto.", "fact")
PEANUTS = ExtractedFact("allergy", "The user is allergic to peanuts.", "fact")
NAME = ExtractedFact("name", "The user's name is Ada.", "fact")
DOG = ExtractedFact("dog", "The user has a dog named Rex.", "fact")
MEAT = (
    r"\b(chicken|beef|pork|bacon|steak|fish|salmon|tuna|shrimp|prawn|lamb|sausage|ham|turkey"
    r"|meat)\b"
)
AS_USER = (
    r"\b(I am|I'm) (a )?vegetarian\b|\bI live in Porto\b|\b(I am|I'm) allergic\b"
    r"|\bmy name is Ada\b|\bmy dog\b"
    r"|\bthe user\b"  # talks about the user, not to them
)


@dataclass(frozen=True)
class Scenario:
    name: str
    facts: tuple[ExtractedFact, ...]
    question: str
    must: str | None = None
    """A pattern the reply must match (case-insensitive)."""
    must_not: str | None = None
    """A pattern the reply must not match."""
    unrelated: bool = False
    """The facts have nothing to do with the question: ``must_not`` checks they stay out."""


SCENARIOS = (
    Scenario("cook for a vegetarian", (VEGETARIAN, PORTO), "What should I cook tonight?",
             must_not=MEAT),
    Scenario("where do I live", (VEGETARIAN, PORTO), "Where do I live?", must=r"\bPorto\b"),
    Scenario("a snack without peanuts", (PEANUTS, PORTO), "Suggest a snack for a long hike.",
             must_not=r"\bpeanut butter\b|\b(eat|try|bring|pack|grab|have|with|and|some|of) "
                      r"(some )?(roasted |salted |honey )?peanuts\b"),
    Scenario("my name", (NAME, DOG), "What's my name?", must=r"\bAda\b"),
    Scenario("my dog's name", (NAME, DOG), "What is my dog called?", must=r"\bRex\b"),
    Scenario("unrelated: basil", (VEGETARIAN, PORTO, PEANUTS), "How do I keep basil alive on a "
             "windowsill?", must_not=r"vegetarian|Porto|peanut|allerg", unrelated=True),
    Scenario("unrelated: sleep", (NAME, DOG, PEANUTS), "Give me one tip for sleeping better.",
             must_not=r"peanut|allerg", unrelated=True),
    Scenario("dinner and home", (VEGETARIAN, PORTO), "What should I cook tonight, and where do "
             "I live?", must=r"\bPorto\b", must_not=MEAT),
)  # fmt: skip

VARIANTS: dict[str, tuple[str, str]] = {
    "default": (_background.BACKGROUND, preferences._INTRO),
    "before (issue 21)": (
        "Background from earlier conversations with you (the user). It is not part of this "
        'conversation: use it only where it helps, speak to the user as "you", and do not '
        "mention this note.",
        "What you know about the user from earlier conversations (use it when relevant):",
    ),
    "the person you talk to": (
        "Notes on the person you are talking to, from your earlier conversations with them. "
        "They are not part of this conversation: use them only where they help, call the person "
        '"you", and do not mention these notes.',
        "Facts about the user (the person you are talking to):",
    ),
    "person, assistant reminder": (
        "Notes on the person you are talking to, from your earlier conversations with them. "
        "They are not part of this conversation: use them only where they help, call the person "
        '"you", and do not mention these notes. You are the assistant, not this person.',
        "Facts about the user (the person you are talking to):",
    ),
    "person, facts as 'you'": (
        "Notes on the person you are talking to, from your earlier conversations with them. "
        "They are not part of this conversation: use them only where they help, call the person "
        '"you", and do not mention these notes.',
        "What you know about them:",
    ),
    "respect them": (
        _background.BACKGROUND + " Never suggest what they rule out.",
        preferences._INTRO,
    ),
    "short": (
        "Notes from earlier chats with this user (use them only if relevant; never mention them).",
        "About the user:",
    ),
}


def _failures(scenario: Scenario, reply: str) -> list[str]:
    out: list[str] = []
    if scenario.must and not re.search(scenario.must, reply, re.I):
        out.append("uses")
    if scenario.must_not and re.search(scenario.must_not, reply, re.I):
        out.append("quiet" if scenario.unrelated else "respects")
    if re.search(AS_USER, reply, re.I):
        out.append("voice")
    return out


ALL_FACTS = (VEGETARIAN, PORTO, PEANUTS, NAME, DOG)
"""Every scenario is also asked with all five facts known: a memory that holds more than the
question needs (and an order the model may copy)."""


async def _reply(
    client: LocalChatClient,
    store: MemoryStore,
    user: str,
    question: str,
    facts: tuple[ExtractedFact, ...],
    seed: int,
    instructions: str,
) -> str:
    """One new chat of ``user`` (who has told ``facts`` before) asking ``question``."""
    await UserPreferencesMemory(store).add_facts(facts, user_id=user)
    providers = memory_cmd.chat_memory(store, client)
    agent = ChatAgent(client, instructions, context_providers=providers)
    thread = agent.get_new_thread(user_id=user)
    response = await agent.run(question, thread=thread, max_tokens=120, seed=seed)
    for provider in providers:
        if isinstance(provider, UserPreferencesMemory):
            await provider.wait_pending()
    return response.text


def _asked() -> list[tuple[Scenario, tuple[ExtractedFact, ...]]]:
    return [(scenario, facts) for scenario in SCENARIOS for facts in (scenario.facts, ALL_FACTS)]


async def run(
    variants: Sequence[str], seeds: int, verbose: bool, model: str | None, instructions: str
) -> None:
    client = LocalChatClient(model)
    print(
        f"model: {client.model_path.name}; {len(SCENARIOS)} scenarios x 2 sets of facts "
        f"(the scenario's, all five) x {seeds} seeds"
    )
    print(f"  {'wording':24} {'passed':>8} {'uses':>5} {'respects':>8} {'quiet':>5} {'voice':>5}")
    for variant in variants:
        _background.BACKGROUND, preferences._INTRO = VARIANTS[variant]
        counts = {"uses": 0, "respects": 0, "quiet": 0, "voice": 0}
        passed = 0
        with tempfile.TemporaryDirectory() as tmp:
            # One store (and embedder) for the variant; each chat is its own user, so each sees
            # only the facts its scenario gave it.
            store = open_memory_store(Path(tmp) / "memory.sqlite3")
            for n, (scenario, facts) in enumerate(_asked()):
                for seed in range(seeds):
                    user = f"{USER}-{n}-{seed}"
                    reply = await _reply(
                        client, store, user, scenario.question, facts, seed, instructions
                    )
                    failed = _failures(scenario, reply)
                    passed += not failed
                    for kind in failed:
                        counts[kind] += 1
                    if verbose:
                        mark = ",".join(failed) or "ok"
                        text = " ".join(reply.split())[: 400 if failed else 100]
                        print(f"    [{mark}] {scenario.name} #{seed}: {text}")
            await store.aclose()
        total = len(_asked()) * seeds
        print(
            f"  {variant:24} {passed:>4}/{total:<3} {counts['uses']:>5} {counts['respects']:>8} "
            f"{counts['quiet']:>5} {counts['voice']:>5}   (failures by kind)",
            flush=True,
        )
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Does the chat's model use what memory gives it?")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per scenario (3)")
    parser.add_argument(
        "--variants",
        nargs="*",
        metavar="NAME",
        help=f"also other wordings (all without a name): {', '.join(VARIANTS)}",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every reply")
    parser.add_argument("--model", help="a named model or GGUF file (default: the chat's default)")
    parser.add_argument(
        "--instructions",
        default=DEFAULT_INSTRUCTIONS,
        help=f"the agent's instructions (default: threadline chat's, {DEFAULT_INSTRUCTIONS!r})",
    )
    args = parser.parse_args()
    variants = ["default"] if args.variants is None else args.variants or list(VARIANTS)
    asyncio.run(run(variants, args.seeds, args.verbose, args.model, args.instructions))


if __name__ == "__main__":
    main()
