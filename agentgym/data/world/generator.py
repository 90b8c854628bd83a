"""A seeded fictional world: people, cities, organisations, works and events with typed
relations, rendered as encyclopedia pages (text and HTML with links).

The world is a few numpy arrays (one slot per entity), so it scales to millions of documents;
pages are rendered on demand from an entity's id, the same bytes for the same seed. No model
has seen these names, so questions about them cannot be answered from memory (FictionalHot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import numpy as np

from agentgym.data.world.names import NameSpace, syllables

_LINK = re.compile(r"\[\[\d+\|([^\]]+)\]\]")
KINDS = ("person", "city", "organisation", "work", "event")
SHARES = (0.5, 0.1, 0.15, 0.2, 0.05)
OCCUPATIONS = [
    "architect",
    "botanist",
    "cartographer",
    "composer",
    "engineer",
    "historian",
    "novelist",
    "painter",
    "physician",
    "sculptor",
    "astronomer",
    "chemist",
]
INDUSTRIES = [
    "Dynamics",
    "Foundry",
    "Press",
    "Observatory",
    "Shipping",
    "Textiles",
    "Institute",
    "Collective",
    "Labs",
    "Guild",
]
GENRES = ["novel", "opera", "film", "atlas", "symphony", "treatise", "play", "album"]
EVENTS = ["Festival", "Expedition", "Summit", "Exhibition", "Regatta", "Congress"]


@dataclass(frozen=True)
class Document:
    """One encyclopedia page."""

    id: str
    title: str
    text: str
    html: str

    @property
    def url(self) -> str:
        return f"/wiki/{self.id}"


class World:
    """The world for ``seed`` with ``size`` entities (one document each).

    Relations: a person was born in a city (``birthplace``) and works for an organisation
    (``employer``); an organisation has a headquarters city and a founder; a city lies in a
    country; a work has a creator; an event takes place in a city and has an organiser.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 100:
            raise ValueError(f"a world needs at least 100 entities, got {size}")
        self.size, self.seed = size, seed
        rng = np.random.default_rng(seed)
        counts = [max(2, int(size * s)) for s in SHARES]
        counts[0] += size - sum(counts)
        self.kind = np.repeat(np.arange(len(KINDS)), counts)
        rng.shuffle(self.kind)
        self.ids = {k: np.flatnonzero(self.kind == i) for i, k in enumerate(KINDS)}
        self.rank = np.zeros(size, dtype=np.int64)  # index of an entity within its kind
        for ids in self.ids.values():
            self.rank[ids] = np.arange(len(ids))
        syl = syllables(rng, 60)
        self._names = {
            k: NameSpace(syl, 5 if k == "person" else 3, salt=i) for i, k in enumerate(KINDS)
        }
        self.countries = [w.capitalize() for w in {a + b for a in syl[:12] for b in syl[12:20]}]
        self.countries.sort()
        persons, cities, orgs = self.ids["person"], self.ids["city"], self.ids["organisation"]

        def pick(pool: np.ndarray) -> np.ndarray:
            return pool[rng.integers(0, len(pool), size)]

        self.year = rng.integers(1850, 2001, size)  # born / founded / made / held
        self.city = pick(cities)  # birthplace, headquarters, location
        self.org = pick(orgs)  # employer, organiser
        self.person = pick(persons)  # founder, creator
        self.country = rng.integers(0, len(self.countries), size)
        self.category = rng.integers(0, 12, size)  # occupation / industry / genre / event type
        # a work is made after its creator is born; an organisation is founded after its founder
        made = np.minimum(self.year[self.person] + rng.integers(20, 60, size), 2025)
        self.year = np.where(np.isin(self.kind, [2, 3]), made, self.year)

    # ---- facts ------------------------------------------------------------------------

    def kind_of(self, i: int) -> str:
        return KINDS[int(self.kind[i])]

    def name(self, i: int) -> str:
        kind, k = self.kind_of(i), int(self.rank[i])
        ns = self._names[kind]
        if kind == "person":
            return " ".join(ns.words(k, 2, 3))
        word = ns.words(k, 3)[0]
        if kind == "city":
            return word
        if kind == "organisation":
            return f"{word} {INDUSTRIES[int(self.category[i]) % len(INDUSTRIES)]}"
        if kind == "work":
            return f"The {word} {GENRES[int(self.category[i]) % len(GENRES)].capitalize()}"
        return f"{EVENTS[int(self.category[i]) % len(EVENTS)]} of {word}"

    def occupation(self, i: int) -> str:
        return OCCUPATIONS[int(self.category[i]) % len(OCCUPATIONS)]

    def country_of(self, city: int) -> str:
        return self.countries[int(self.country[city])]

    def aliases(self, i: int) -> list[str]:
        """Other strings that count as naming entity ``i`` in an answer."""
        name = self.name(i)
        if self.kind_of(i) == "person":
            first, last = name.split(" ", 1)
            return [name, f"{last}, {first}"]
        if self.kind_of(i) == "work":
            return [name, name.removeprefix("The ")]
        return [name]

    # ---- documents --------------------------------------------------------------------

    def document(self, i: int) -> Document:
        """Entity ``i``'s page (text: title line then sentences; html: with links)."""
        sentences = self._sentences(int(i))
        text = " ".join(_LINK.sub(r"\1", s) for s in sentences)
        html_body = " ".join(_link(s, self) for s in sentences)
        title = self.name(i)
        html = (
            f"<html><head><title>{escape(title)}</title></head><body><h1>{escape(title)}"
            f"</h1><p>{html_body}</p></body></html>"
        )
        return Document(id=f"d{i}", title=title, text=text, html=html)

    def _sentences(self, i: int) -> list[str]:
        n, kind, y = self.name(i), self.kind_of(i), int(self.year[i])
        city, org, person = int(self.city[i]), int(self.org[i]), int(self.person[i])
        ref = lambda j: f"[[{j}|{self.name(j)}]]"  # noqa: E731
        if kind == "person":
            return [
                f"{n} (born {y} in {ref(city)}) is a {self.occupation(i)}.",
                f"{n.split()[0]} works for {ref(org)}.",
            ]
        if kind == "city":
            return [f"{n} is a city in {self.country_of(i)}.", f"It was founded in {y}."]
        if kind == "organisation":
            return [
                f"{n} is an organisation founded in {y} by {ref(person)}.",
                f"Its headquarters are in {ref(city)}.",
            ]
        if kind == "work":
            genre = GENRES[int(self.category[i]) % len(GENRES)]
            article = "an" if genre[0] in "aeiou" else "a"
            return [f"{n} is {article} {genre} by {ref(person)}, completed in {y}."]
        return [f"The {n} was held in {ref(city)} in {y}.", f"It was organised by {ref(org)}."]

    def documents(self) -> list[Document]:
        """Every page (fine up to ~100K; iterate ``document(i)`` for more)."""
        return [self.document(i) for i in range(self.size)]


def _link(sentence: str, world: World) -> str:
    out, rest = [], sentence
    while "[[" in rest:
        head, _, tail = rest.partition("[[")
        target, _, tail = tail.partition("]]")
        j, _, label = target.partition("|")
        out.append(escape(head) + f'<a href="/wiki/d{j}">{escape(label)}</a>')
        rest = tail
    return "".join(out) + escape(rest)
