"""The token-budget reducer: pure, so it is tested with a word-count "tokenizer"."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.history import (
    TokenBudgetReducer,
    group_tool_exchanges,
    reduce_to_token_budget,
)
from threadline.types import (
    ChatMessage,
    FunctionCallContent,
    FunctionResultContent,
    Role,
)


def words(message: ChatMessage) -> int:
    """One token per word plus one for the message itself."""
    return 1 + sum(len(str(getattr(c, "text", c)).split()) for c in message.contents)


def call(call_id: str, name: str = "lookup") -> ChatMessage:
    return ChatMessage(Role.ASSISTANT, contents=[FunctionCallContent(call_id=call_id, name=name)])


def result(*call_ids: str) -> ChatMessage:
    return ChatMessage(
        Role.TOOL, contents=[FunctionResultContent(call_id=c, result="ok") for c in call_ids]
    )


def test_keeps_system_and_newest_messages_that_fit() -> None:
    system = ChatMessage(Role.SYSTEM, "be brief")  # 3
    history = [
        ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"m{i} a b") for i in range(10)
    ]
    # each history message costs 4; budget 3 + 3*4 + 3 (not enough for a 4th)
    reduced = reduce_to_token_budget([system, *history], budget=18, count_tokens=words)
    assert reduced == [system, *history[-3:]]


def test_everything_fits_is_unchanged() -> None:
    messages = [
        ChatMessage(Role.SYSTEM, "x"),
        ChatMessage(Role.USER, "hi"),
        ChatMessage(Role.ASSISTANT, "yo"),
    ]
    assert reduce_to_token_budget(messages, budget=100, count_tokens=words) == messages


def test_tool_call_and_result_are_dropped_together() -> None:
    user = ChatMessage(Role.USER, "weather in paris please")  # 5
    exchange = [call("c1"), result("c1")]
    answer = ChatMessage(Role.ASSISTANT, "sunny")  # 2
    messages = [user, *exchange, answer]
    cost_exchange = sum(words(m) for m in exchange)
    # Room for the answer and for the result alone, but not for call + result: both go.
    budget = words(answer) + words(exchange[1])
    assert budget < words(answer) + cost_exchange
    assert reduce_to_token_budget(messages, budget=budget, count_tokens=words) == [answer]
    # Room for both: both stay, and the older user message (which does not fit) does not.
    reduced = reduce_to_token_budget(
        messages, budget=words(answer) + cost_exchange, count_tokens=words
    )
    assert reduced == [*exchange, answer]


def test_never_starts_with_an_orphaned_tool_result() -> None:
    messages = [
        ChatMessage(Role.USER, "q"),
        call("a"),
        call("b"),
        result("a", "b"),
        ChatMessage(Role.ASSISTANT, "done"),
    ]
    for budget in range(0, 30):
        reduced = reduce_to_token_budget(messages, budget=budget, count_tokens=words)
        assert not reduced or reduced[0].role != Role.TOOL, budget


def test_system_messages_are_kept_even_over_budget() -> None:
    system = ChatMessage(Role.SYSTEM, "a very long instruction " * 10)
    user = ChatMessage(Role.USER, "hi")
    assert reduce_to_token_budget([system, user], budget=5, count_tokens=words) == [system]


def test_newest_unit_too_big_leaves_only_system() -> None:
    system = ChatMessage(Role.SYSTEM, "s")
    huge = ChatMessage(Role.USER, "word " * 100)
    assert reduce_to_token_budget(
        [system, ChatMessage(Role.USER, "old"), huge], budget=50, count_tokens=words
    ) == [system]


def test_counts_each_message_at_most_once() -> None:
    seen: list[str] = []

    def counting(message: ChatMessage) -> int:
        seen.append(message.message_id)
        return 1

    messages = [ChatMessage(Role.USER, str(i)) for i in range(20)]
    reduce_to_token_budget(messages, budget=5, count_tokens=counting)
    assert len(seen) == len(set(seen))


def test_grouping_joins_calls_with_their_results() -> None:
    u = ChatMessage(Role.USER, "q")
    c1, r1 = call("1"), result("1")
    c2, c3, r23 = call("2"), call("3"), result("2", "3")
    orphan = result("gone")
    units = group_tool_exchanges([u, c1, r1, c2, c3, r23, orphan])
    assert units == [[u], [c1, r1], [c2, c3, r23], [orphan]]


def test_reducer_class_binds_settings() -> None:
    reducer = TokenBudgetReducer(budget=4, count_tokens=words)
    messages = [ChatMessage(Role.USER, "one two"), ChatMessage(Role.ASSISTANT, "three")]
    assert reducer(messages) == [messages[1]]


_roles = st.sampled_from([Role.USER, Role.ASSISTANT])


@st.composite
def conversations(draw: st.DrawFn) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    if draw(st.booleans()):
        out.append(ChatMessage(Role.SYSTEM, "sys " * draw(st.integers(0, 5))))
    for i in range(draw(st.integers(0, 15))):
        if draw(st.booleans()):
            n = draw(st.integers(1, 3))
            ids = [f"c{i}_{k}" for k in range(n)]
            out.append(
                ChatMessage(
                    Role.ASSISTANT, contents=[FunctionCallContent(call_id=c, name="f") for c in ids]
                )
            )
            out.append(result(*ids))
        else:
            out.append(ChatMessage(draw(_roles), "w " * draw(st.integers(0, 6))))
    return out


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(0, 80))
def test_properties(messages: list[ChatMessage], budget: int) -> None:
    reduced = reduce_to_token_budget(messages, budget=budget, count_tokens=words)
    system = [m for m in messages if m.role == Role.SYSTEM]
    rest = reduced[len(system) :]
    assert reduced[: len(system)] == system
    # a contiguous tail of the non-system messages
    tail = messages[len(system) :]
    assert rest == tail[len(tail) - len(rest) :]
    # within budget unless only the system messages are left
    if rest:
        assert sum(words(m) for m in reduced) <= budget
    # every result kept has its call kept, and every call kept has its result kept
    calls = {c.call_id for m in rest for c in m.contents if isinstance(c, FunctionCallContent)}
    results = {c.call_id for m in rest for c in m.contents if isinstance(c, FunctionResultContent)}
    assert calls == results


def test_there_is_one_token_counter_and_one_estimate() -> None:
    """Reducers, stores and the server's usage estimate count with the same definitions."""
    import threadline
    from threadline import history
    from threadline.threads.stores import base

    assert base.TokenCounter is history.TokenCounter is threadline.TokenCounter
    assert base.estimate_tokens is history.estimate_tokens is threadline.estimate_tokens
