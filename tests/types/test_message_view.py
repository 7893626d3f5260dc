"""``MessageView``: a thread read without copying behaves as a read-only list of its messages."""

from __future__ import annotations

import pytest

from threadline.types.messages import ChatMessage, MessageView, Role


def _messages(*texts: str) -> list[ChatMessage]:
    return [ChatMessage(Role.USER, t) for t in texts]


def test_a_view_reads_like_the_list_it_stands_for() -> None:
    head, tail = _messages("a", "b", "c"), _messages("d", "e")
    view = MessageView((head, 2), (tail, 2))  # the first two of each part
    expected = [head[0], head[1], tail[0], tail[1]]
    assert len(view) == 4 and list(view) == expected and view == expected
    assert [view[i] for i in range(4)] == expected and view[-1] is tail[1]
    assert view[1:3] == expected[1:3] and list(reversed(view)) == expected[::-1]
    assert tail[0] in view and view.index(tail[0]) == 2
    for bad in (4, -5):
        with pytest.raises(IndexError):
            view[bad]


def test_a_view_does_not_see_what_its_lists_gain_later() -> None:
    history = _messages("a", "b")
    view = MessageView((history, len(history)))
    history.extend(_messages("c"))
    assert [m.text for m in view] == ["a", "b"]
    joined = MessageView.of((), history, _messages("d"))
    assert [m.text for m in joined] == ["a", "b", "c", "d"]
    assert joined != ["a", "b", "c", "d"]  # messages, not texts
    with pytest.raises(TypeError):
        hash(joined)


def test_last_is_the_last_message_of_the_last_non_empty_part() -> None:
    first = [ChatMessage(Role.USER, "a"), ChatMessage(Role.ASSISTANT, "b")]
    grown = [*first, ChatMessage(Role.USER, "not yet seen")]
    assert MessageView((grown, 2), ([], 0)).last() is first[1]  # an empty part, a grown list
    assert MessageView.of(first, []).last() is first[1]
    assert MessageView().last() is None
