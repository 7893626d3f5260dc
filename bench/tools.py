"""Tool calling with the embedded model: does a prompt that needs a tool call it, and only then?

20+ prompts on a chat with three plain-function tools (weather, a unit conversion, a time
zone's clock), run through ``ChatAgent`` and ``LocalChatClient`` with greedy sampling. A prompt
that needs a tool is correct when the run called that tool with the expected argument and the
final answer is prose (not JSON, not a tool schema); a prompt that needs none is correct when
no tool was called and the answer is prose. Issue 21 item 6: target >= 90% correct with the
default model; otherwise the docs and ``chat --help`` name a model that reaches it.

    PYTHONPATH=src python bench/tools.py [--model qwen-0.5b] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass

from threadline.agents.chat_agent import ChatAgent
from threadline.clients.local import LocalChatClient
from threadline.types.contents import FunctionCallContent


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: the city's name, e.g. "Paris".
    """
    return f"It is 18 degrees and sunny in {city}."


def convert_units(value: float, unit_from: str, unit_to: str) -> str:
    """Convert a quantity between units of length, weight or temperature.

    Args:
        value: the quantity to convert.
        unit_from: its unit, e.g. "km".
        unit_to: the unit wanted, e.g. "miles".
    """
    return f"{value} {unit_from} is about 42.0 {unit_to} (computed)."


def get_time(timezone: str) -> str:
    """Get the current local time in a time zone or city.

    Args:
        timezone: an IANA zone or a city, e.g. "Europe/Lisbon" or "Tokyo".
    """
    return f"It is 14:05 in {timezone}."


@dataclass(frozen=True)
class Case:
    prompt: str
    tool: str | None
    """The tool the prompt needs, or None."""
    argument: str = ""
    """Text the call's arguments must contain (case-insensitive)."""


CASES = (
    Case("What's the weather like in Paris right now?", "get_weather", "paris"),
    Case("Is it raining in London today?", "get_weather", "london"),
    Case("Tell me the current weather in Tokyo.", "get_weather", "tokyo"),
    Case("Should I take an umbrella in Berlin today? Check the weather.", "get_weather", "berlin"),
    Case("How warm is it in Lisbon at the moment?", "get_weather", "lisbon"),
    Case("Convert 10 km to miles.", "convert_units", "km"),
    Case("How many pounds is 5 kilograms?", "convert_units", "5"),
    Case("Convert 30 degrees Celsius to Fahrenheit.", "convert_units", "30"),
    Case("What time is it in Tokyo right now?", "get_time", "tokyo"),
    Case("What's the current time in New York?", "get_time", "new york"),
    Case("Tell me the local time in Sydney.", "get_time", "sydney"),
    Case("Hello! How are you?", None),
    Case("Write a haiku about autumn.", None),
    Case("What is the capital of France?", None),
    Case("Explain what a tool call is in one sentence.", None),
    Case("Give me three names for a pet cat.", None),
    Case("What is 2 + 2?", None),
    Case("Translate 'good morning' into Spanish.", None),
    Case("Summarise the plot of Romeo and Juliet in one sentence.", None),
    Case("Thanks, that's all for today.", None),
    Case("Why is the sky blue? Answer briefly.", None),
    Case("Recommend a good book about history.", None),
)

_JSONISH = re.compile(r'^\s*(```|\{|\[)|"(name|arguments|parameters|properties)"\s*:|<tool_call>')


@dataclass
class Outcome:
    case: Case
    calls: list[FunctionCallContent]
    answer: str

    @property
    def prose(self) -> bool:
        return bool(self.answer.strip()) and not _JSONISH.search(self.answer)

    @property
    def correct(self) -> bool:
        if self.case.tool is None:
            return not self.calls and self.prose
        wanted = [c for c in self.calls if c.name == self.case.tool]
        return (
            bool(wanted)
            and any(self.case.argument in c.arguments.lower().replace("_", " ") for c in wanted)
            and self.prose
        )


async def run_case(agent: ChatAgent, case: Case) -> Outcome:
    response = await agent.run(case.prompt, temperature=0.0, max_tokens=128)
    calls = [c for m in response.messages for c in m.contents if isinstance(c, FunctionCallContent)]
    return Outcome(case=case, calls=calls, answer=response.text)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default=None, help="a named model or GGUF file (default)")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    client = LocalChatClient(args.model)
    await client.load()
    agent = ChatAgent(
        client,
        "You are a helpful assistant. Use a tool only when the question needs it.",
        tools=[get_weather, convert_units, get_time],
    )
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    try:
        for case in CASES:
            outcomes.append(await run_case(agent, case))
    finally:
        await client.aclose()
    took = time.perf_counter() - started
    groups = {"needs a tool": [o for o in outcomes if o.case.tool], "needs none": []}
    groups["needs none"] = [o for o in outcomes if not o.case.tool]
    print(f"model {client.model_name}, {len(CASES)} prompts, {took:.0f} s")
    for outcome in outcomes:
        if args.show or not outcome.correct:
            mark = "ok " if outcome.correct else "BAD"
            calls = ", ".join(f"{c.name}({c.arguments})" for c in outcome.calls) or "no call"
            answer = " ".join(outcome.answer.split())[:110]
            print(f"{mark} {outcome.case.prompt[:50]:<50} | {calls} | {answer}")
    for name, group in groups.items():
        right = sum(o.correct for o in group)
        print(f"{name:<14} {right}/{len(group)} correct")
    right = sum(o.correct for o in outcomes)
    raw = sum(not o.prose for o in outcomes)
    share = right / len(outcomes)
    print(
        f"overall {right}/{len(outcomes)} = {share:.0%} (target >= 90%); "
        f"answers that were JSON or a schema: {raw}"
    )


if __name__ == "__main__":
    asyncio.run(main())
