"""LoCoMo-shaped conversations for ``bench/memory.py``: loading and the exact metric.

LoCoMo (Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL
2024; CC BY-NC 4.0) is read from a path given on the command line and never copied anywhere.
The metric is the one of ``shared/data/locomo-dev/README.md``:

* one user per conversation (``user_id`` = ``sample_id``); each session is one thread whose
  messages carry the ``dia_id`` as ``message_id``, the speaker as ``author_name`` and the
  session's date as ``occurred_at``; a turn with an image has `` [shares a photo of ...]``
  appended;
* every question of categories 1-4 whose evidence names at least one turn of the file is asked
  with ``recall(question, user_id=..., limit=10)``;
* session R@k: an evidence turn's session is among the first k distinct ``thread_id``s of the
  hits; turn R@k: an evidence ``dia_id`` is among the first k distinct message ids of the hits
  (each hit's ``message_ids`` in their order). Any hit counts; averaged over the questions.

Both speakers are people. They are ingested as ``Role.USER`` messages (``speaker_roles``
"user"), each with its name as ``author_name``; ``"user-assistant"`` makes the second speaker
the assistant instead, to check that a ranking lever that prefers what the user said does not
depend on who is called the assistant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from threadline.types import ChatMessage, Role

__all__ = [
    "CATEGORIES",
    "Conversation",
    "LoCoMoQuestion",
    "Tally",
    "load",
    "parse_date",
]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_DATE = re.compile(
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<ampm>am|pm)\s+on\s+(?P<day>\d{1,2})\s+"
    r"(?P<month>[A-Za-z]+),?\s+(?P<year>\d{4})",
    re.I,
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        "january february march april may june july august september october november "
        "december".split(),
        start=1,
    )
}


def parse_date(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` as an aware UTC datetime."""
    found = _DATE.search(text)
    if found is None:
        raise ValueError(f"unrecognised LoCoMo session date {text!r}")
    hour = int(found["hour"]) % 12 + (12 if found["ampm"].lower() == "pm" else 0)
    month = _MONTHS[found["month"].lower()]
    return datetime(
        int(found["year"]), month, int(found["day"]), hour, int(found["minute"]), tzinfo=UTC
    )


@dataclass(frozen=True)
class Session:
    thread_id: str
    occurred_at: datetime
    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class LoCoMoQuestion:
    text: str
    category: int
    evidence: frozenset[str]
    """The evidence ``dia_id``s that name a turn of the file."""
    threads: frozenset[str]


@dataclass(frozen=True)
class Conversation:
    user_id: str
    sessions: tuple[Session, ...]
    questions: tuple[LoCoMoQuestion, ...]

    @property
    def turns(self) -> int:
        return sum(len(s.messages) for s in self.sessions)


def _text(turn: dict[str, Any]) -> str:
    text = str(turn.get("text", ""))
    caption = turn.get("blip_caption")
    if caption:
        text += f" [shares a photo of {caption}]"
    return text


def load(path: Path, *, speaker_roles: str = "user") -> list[Conversation]:
    """The conversations of a LoCoMo-shaped JSON file, ready to ingest and ask."""
    samples = json.loads(path.read_text(encoding="utf-8"))
    out: list[Conversation] = []
    for sample in samples:
        user = str(sample["sample_id"])
        conversation = sample["conversation"]
        second = conversation.get("speaker_b")
        sessions: list[Session] = []
        thread_of: dict[str, str] = {}
        numbers = sorted(
            int(key.split("_")[1])
            for key in conversation
            if re.fullmatch(r"session_\d+", key) and conversation[key]
        )
        for number in numbers:
            thread_id = f"{user}/session-{number}"
            messages: list[ChatMessage] = []
            for turn in conversation[f"session_{number}"]:
                role = Role.USER
                if speaker_roles == "user-assistant" and turn["speaker"] == second:
                    role = Role.ASSISTANT
                messages.append(
                    ChatMessage(
                        role,
                        _text(turn),
                        author_name=str(turn["speaker"]),
                        message_id=str(turn["dia_id"]),
                    )
                )
                thread_of[str(turn["dia_id"])] = thread_id
            when = parse_date(str(conversation[f"session_{number}_date_time"]))
            sessions.append(Session(thread_id, when, tuple(messages)))
        questions: list[LoCoMoQuestion] = []
        for qa in sample.get("qa", []):
            category = int(qa.get("category", 0))
            if category not in CATEGORIES:
                continue
            evidence = frozenset(str(e) for e in qa.get("evidence", []) if str(e) in thread_of)
            if not evidence:
                continue
            questions.append(
                LoCoMoQuestion(
                    text=str(qa["question"]),
                    category=category,
                    evidence=evidence,
                    threads=frozenset(thread_of[e] for e in evidence),
                )
            )
        out.append(Conversation(user, tuple(sessions), tuple(questions)))
    return out


def _distinct(values: Iterable[str | None], k: int) -> set[str]:
    out: list[str] = []
    for value in values:
        if value is not None and value not in out:
            out.append(value)
            if len(out) == k:
                break
    return set(out)


@dataclass
class Tally:
    """Session and turn recall@1/5/10, overall and by category."""

    ks: tuple[int, ...] = (1, 5, 10)
    counts: dict[int, int] = field(default_factory=lambda: {})
    session: dict[tuple[int, int], int] = field(default_factory=lambda: {})
    turn: dict[tuple[int, int], int] = field(default_factory=lambda: {})

    def add(self, question: LoCoMoQuestion, hits: Sequence[Any]) -> None:
        """Score one question's hits (anything with ``thread_id`` and ``message_ids``)."""
        c = question.category
        self.counts[c] = self.counts.get(c, 0) + 1
        threads = [h.thread_id for h in hits]
        ids = [m for h in hits for m in h.message_ids]
        for k in self.ks:
            found_session = bool(_distinct(threads, k) & question.threads)
            found_turn = bool(_distinct(ids, k) & question.evidence)
            self.session[c, k] = self.session.get((c, k), 0) + found_session
            self.turn[c, k] = self.turn.get((c, k), 0) + found_turn

    def total(self) -> int:
        return sum(self.counts.values())

    def rate(self, which: str, k: int, category: int | None = None) -> float:
        table = self.session if which == "session" else self.turn
        if category is None:
            n = self.total()
            hits = sum(v for (_, kk), v in table.items() if kk == k)
        else:
            n = self.counts.get(category, 0)
            hits = table.get((category, k), 0)
        return hits / n if n else 0.0


DEFAULT_PATH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "locomo-dev"
DEFAULT_FILE = DEFAULT_PATH / "locomo-dev.json"
"""The development half, seen from the project's root (``../shared/data/locomo-dev``)."""


def print_header(title: str) -> None:
    print(f"  {title}")
    cats = " ".join(f"{name:>13}" for name in CATEGORIES.values())
    print(
        f"    {'configuration':34} {'sess R@1':>8} {'R@5':>5} {'R@10':>5} | "
        f"{'turn R@1':>8} {'R@5':>5} {'R@10':>5} | {cats}  (session R@5 / turn R@10)"
    )


def print_row(label: str, tally: Tally) -> None:
    cats = " ".join(
        f"{tally.rate('session', 5, c):6.3f}/{tally.rate('turn', 10, c):.3f}" for c in CATEGORIES
    )
    print(
        f"    {label:34} {tally.rate('session', 1):8.3f} {tally.rate('session', 5):5.3f} "
        f"{tally.rate('session', 10):5.3f} | {tally.rate('turn', 1):8.3f} "
        f"{tally.rate('turn', 5):5.3f} {tally.rate('turn', 10):5.3f} | {cats}"
    )
