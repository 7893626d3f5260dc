"""The synthetic multi-session conversations of ``bench/memory.py``, generated deterministically.

Each user has ``sessions`` conversations of ``turns`` messages (user and assistant alternate),
a few days apart. Early sessions state facts about the user (a pet, a job, a city, a sibling, ...);
later sessions update some of them ("I quit ... and now work at ..."); trips and a race happen on
known dates. Everything else is distractor chat, some of it sharing words with the facts ("a dog
food recipe", "my car makes a noise"). Assistant replies are short and often say little on their
own ("That's great, congratulations!"), as real ones do.

Questions paraphrase their evidence rather than quoting it, and each names the message(s) that
answer it: the latest statement for updated facts, the first for "what was my first ..."
questions, and the turn of the named month for temporal questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["Question", "Session", "Turn", "generate"]

NAMES = "Biscuit Pepper Mochi Juniper Waffles Clover Ziggy Nutmeg Pixel Tofu Maple Olive".split()
PEOPLE = "Hannah Priya Tomas Ingrid Mateo Keiko Amara Lukas Sofia Dmitri Yara Felix".split()
SPECIES = ["dog", "cat", "rabbit", "parrot"]
JOBS = [
    ("nurse", "St. Mary's hospital"),
    ("data analyst", "Brightwave"),
    ("teacher", "Lincoln elementary"),
    ("architect", "Studio Nord"),
    ("chef", "the Olive Tree bistro"),
    ("software engineer", "Quantix"),
    ("pharmacist", "CityCare pharmacy"),
    ("accountant", "Meyer & Sons"),
]
CITIES = "Lisbon Denver Montreal Edinburgh Melbourne Kyoto Austin Valencia Bergen Tallinn".split()
DISHES = ["mushroom risotto", "pad thai", "shakshuka", "eggplant parmesan", "dal makhani"]
HOBBIES = ["pottery", "rock climbing", "watercolor painting", "birdwatching", "salsa dancing"]
CARS = [("blue", "Subaru Outback"), ("red", "Mazda 3"), ("silver", "Toyota Prius")]
ALLERGENS = ["penicillin", "shellfish", "cashews", "bee stings", "latex"]
DESTINATIONS = [
    ("Iceland", "the glacier lagoon"),
    ("Peru", "Machu Picchu"),
    ("Japan", "the bamboo forest"),
    ("Morocco", "the old medina"),
    ("Norway", "the fjord cruise"),
    ("Vietnam", "Ha Long Bay"),
    ("Chile", "the Atacama desert"),
]
RACES = ["10K", "half marathon", "marathon"]

DISTRACTORS = [
    "Can you suggest a quick dinner recipe with {food}?",
    "What's a good way to keep my plants alive in winter?",
    "Tell me a fun fact about {animal}s.",
    "How do I fix a squeaky door hinge?",
    "Any tips for sleeping better when it's hot outside?",
    "My neighbour's {animal} keeps barking at night, any advice?",
    "What should I read next? I liked a mystery novel recently.",
    "How long should I boil an egg for a soft yolk?",
    "Can you explain what compound interest is?",
    "I'm thinking about repainting the living room, which colors are calming?",
    "What are some good stretches after sitting all day?",
    "My car makes a weird noise when braking, what could it be?",
    "Is it better to rent or buy in a big city?",
    "What's the difference between baking soda and baking powder?",
    "Recommend a podcast about history, please.",
    "How do I get my {animal} to stop chewing shoes?",
    "What's a polite way to decline a wedding invitation?",
    "Suggest a weekend trip idea that doesn't need a flight.",
    "How can I stay focused when working from home?",
    "What's a healthy snack for the afternoon?",
]
REPLIES = [
    "Sure! Here's an idea you might like.",
    "Good question. It depends, but usually the simplest option works best.",
    "That's a common problem; try the easy fix first.",
    "Here are a few suggestions to get you started.",
    "Happy to help with that.",
    "I'd recommend starting small and seeing how it goes.",
]
ACKS = [
    "That's wonderful news, congratulations!",
    "Oh, that sounds lovely. How is it going so far?",
    "Wow, what an exciting change!",
    "Thanks for telling me, I'll keep that in mind.",
    "That's great to hear!",
]
FOLLOW_UPS = [
    "Yes, it's been great so far!",
    "Thanks! I'm really happy about it.",
    "It's going well, a bit of an adjustment though.",
    "Yeah, I couldn't be happier.",
]


@dataclass(frozen=True, slots=True)
class Turn:
    message_id: str
    role: str
    text: str


@dataclass(slots=True)
class Session:
    user_id: str
    thread_id: str
    occurred_at: datetime
    turns: list[Turn] = field(default_factory=lambda: [])


@dataclass(frozen=True, slots=True)
class Question:
    user_id: str
    text: str
    evidence: frozenset[str]
    """Message ids that answer it."""
    threads: frozenset[str]
    """The sessions (thread ids) holding the evidence."""
    temporal: bool = False


@dataclass(slots=True)
class _Plan:
    """Fact statements to place: session index -> list of (statement, question builders)."""

    by_session: dict[int, list[tuple[str, list[tuple[str, bool]]]]] = field(
        default_factory=lambda: {}
    )

    def put(self, session: int, statement: str, questions: list[tuple[str, bool]]) -> None:
        self.by_session.setdefault(session, []).append((statement, questions))


def _plan_user(rng: random.Random, sessions: int, dates: list[datetime]) -> _Plan:
    plan = _Plan()
    early = max(1, sessions // 3)
    late_start = sessions // 2

    def early_slot() -> int:
        return rng.randrange(0, early)

    def late_slot() -> int:
        return rng.randrange(late_start, sessions)

    species, pet, pet2 = rng.choice(SPECIES), *rng.sample(NAMES, 2)
    s = early_slot()
    first_pet = [(f"What did I name the first {species} I adopted?", False)]
    plan.put(s, f"We finally adopted a {species} from the shelter and named her {pet}.", first_pet)
    if rng.random() < 0.5:
        plan.put(
            late_slot(),
            f"Big news: we brought home a second {species}, a little one called {pet2}.",
            [(f"What's the name of the newest {species} in our family?", False)],
        )
    (job, company), (job2, company2) = rng.sample(JOBS, 2)
    plan.put(
        early_slot(),
        f"I just started working as a {job} at {company}.",
        [("Which company did I first join as a " + job + "?", False)],
    )
    if rng.random() < 0.6:
        plan.put(
            late_slot(),
            f"I handed in my notice at {company}; from Monday I'm a {job2} at {company2}.",
            [("Where am I employed these days, and in what role?", False)],
        )
    city = rng.choice(CITIES)
    plan.put(
        early_slot(),
        f"We moved into a flat in {city} last month, close to the river.",
        [("Which city do I live in?", False)],
    )
    sister, sister_job = rng.choice(PEOPLE), rng.choice(JOBS)[0]
    plan.put(
        rng.randrange(sessions),
        f"My sister {sister} is coming to stay with us; she works as a {sister_job}.",
        [("What does my sister do for a living?", False)],
    )
    dish = rng.choice(DISHES)
    plan.put(
        early_slot(),
        f"I've been vegetarian for years and {dish} is my all-time favourite meal.",
        [("What is my favourite meal?", False)],
    )
    hobby = rng.choice(HOBBIES)
    plan.put(
        rng.randrange(sessions),
        f"I signed up for {hobby} classes on Saturdays, it helps me unwind.",
        [("Which classes did I sign up for?", False)],
    )
    color, model = rng.choice(CARS)
    plan.put(
        rng.randrange(sessions),
        f"I bought a used {color} {model} over the weekend, my first car in years.",
        [("What car did I buy?", False)],
    )
    allergen = rng.choice(ALLERGENS)
    plan.put(
        rng.randrange(sessions),
        f"The doctor confirmed I have an allergy to {allergen}.",
        [("What am I allergic to?", False)],
    )
    trip_sessions = rng.sample(range(sessions), k=min(3, sessions))
    for index, (dest, sight) in zip(trip_sessions, rng.sample(DESTINATIONS, 3), strict=False):
        month = dates[index].strftime("%B %Y")
        plan.put(
            index,
            f"Just got back from {dest}! Seeing {sight} was unforgettable.",
            [
                (f"Where did I travel in {month}?", True),
                (f"What did I visit on my {dest} holiday?", False),
            ],
        )
    race = rng.choice(RACES)
    race_session = rng.randrange(sessions)
    plan.put(
        race_session,
        f"Yesterday I finished my first {race}, my legs are still sore.",
        [(f"When did I run my first {race}?", True)],
    )
    return plan


def generate(
    *, users: int, sessions: int, turns: int, seed: int = 8
) -> tuple[list[Session], list[Question]]:
    """Conversations and questions, the same for the same arguments."""
    rng = random.Random(seed)
    all_sessions: list[Session] = []
    questions: list[Question] = []
    for u in range(users):
        user_id = f"user{u:03d}"
        start = datetime(2023, 1, 2, 9, tzinfo=UTC) + timedelta(days=rng.randrange(0, 60))
        dates: list[datetime] = []
        moment = start
        for _ in range(sessions):
            dates.append(moment)
            moment += timedelta(days=rng.randrange(8, 20), hours=rng.randrange(-3, 4))
        plan = _plan_user(rng, sessions, dates)
        for s in range(sessions):
            session = Session(user_id, f"{user_id}-s{s:02d}", dates[s])
            facts = list(plan.by_session.get(s, []))
            pairs = turns // 2
            fact_slots = sorted(rng.sample(range(pairs), k=min(len(facts), pairs)))
            for pair in range(pairs):
                if fact_slots and pair == fact_slots[0]:
                    fact_slots.pop(0)
                    statement, asked = facts.pop(0)
                    user_text, reply = statement, rng.choice(ACKS)
                    mid = f"{session.thread_id}-t{2 * pair:02d}"
                    for text, temporal in asked:
                        questions.append(
                            Question(
                                user_id,
                                text,
                                frozenset({mid}),
                                frozenset({session.thread_id}),
                                temporal,
                            )
                        )
                elif pair > 0 and rng.random() < 0.25:
                    user_text, reply = rng.choice(FOLLOW_UPS), rng.choice(REPLIES)
                else:
                    user_text = rng.choice(DISTRACTORS).format(
                        food=rng.choice(["lentils", "tofu", "chickpeas", "spinach", "rice"]),
                        animal=rng.choice(SPECIES),
                    )
                    reply = rng.choice(REPLIES)
                for offset, (role, text) in enumerate((("user", user_text), ("assistant", reply))):
                    mid = f"{session.thread_id}-t{2 * pair + offset:02d}"
                    session.turns.append(Turn(mid, role, text))
            if turns % 2:
                mid = f"{session.thread_id}-t{turns - 1:02d}"
                session.turns.append(Turn(mid, "user", "Thanks, that's all for today!"))
            all_sessions.append(session)
    return all_sessions, questions
