"""Seeded GUI tasks: an instruction, a checker of the app's final state (and answer), subgoals
for progress, and the oracle's plan through the same action tools.

A template is a family with its fixed options (the shipping method, the toggle and its
value, the file type, ...): ``TEMPLATES`` lists them all; the seed fills in the rest (which
product, which email, which name). A plan step names its element by role and accessible name,
as the accessibility tree shows it.
"""

# ruff: noqa: E731
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentgym.envs.gui.apps import (
    DAYS,
    FILE_TYPES,
    LANGUAGES,
    PEOPLE,
    TIMES,
    TIMEZONES,
    TOGGLES,
    app_data,
)

State = dict[str, Any]
Step = tuple[str, ...]


@dataclass
class GUITask:
    template: str
    app: str
    seed: int
    instruction: str
    plan: list[Step]
    check: Callable[[State, str], bool]
    subgoals: list[Callable[[State], bool]] = field(default_factory=list)


def _shop(
    opt: tuple[str, str], rng: np.random.Generator, d: dict[str, Any]
) -> tuple[str, list[Step], Callable[[State, str], bool], list]:
    family, ship = opt
    P = d["products"]
    pick = lambda xs: xs[int(rng.integers(len(xs)))]
    p = pick(P)
    if family == "n_of":
        n = int(rng.integers(1, 4))
        want, text = {p["name"]: n}, f"Add {n} {p['name']} to the cart"
    elif family == "cheapest_in_category":
        cat = p["category"]
        p = min((x for x in P if x["category"] == cat), key=lambda x: x["price"])
        want, text = {p["name"]: 1}, f"Add the cheapest {cat} product to the cart"
    elif family == "priciest_color":
        p = max((x for x in P if x["color"] == p["color"]), key=lambda x: x["price"])
        want, text = {p["name"]: 1}, f"Add the most expensive {p['color']} product to the cart"
    elif family == "under_price":
        limit = 30
        items = [x for x in P if x["item"] == p["item"] and x["price"] < limit] or [
            min((x for x in P if x["item"] == p["item"]), key=lambda x: x["price"])
        ]
        limit = max(limit, int(max(x["price"] for x in items)) + 1)
        want = {x["name"]: 1 for x in items}
        text = f"Add one of every {p['item']} under ${limit} to the cart"
    elif family == "two_then_remove":
        q = pick([x for x in P if x["name"] != p["name"]])
        want = {q["name"]: 1}
        text = f"Add {p['name']} and {q['name']} to the cart, then remove {p['name']}"
    elif family == "cheapest_item":
        p = min((x for x in P if x["item"] == p["item"]), key=lambda x: x["price"])
        want, text = {p["name"]: 1}, f"Add the cheapest {p['item']} to the cart"
    elif family == "category_add":
        first = next(x for x in P if x["category"] == p["category"])
        p, want = first, {first["name"]: 1}
        text = (
            f"Show only the {p['category']} category and add the first product listed to the cart"
        )
    else:  # "search_add"
        want, text = {p["name"]: 2}, f"Search for {p['item']} and add two {p['name']} to the cart"
    plan: list[Step] = []
    if family == "category_add":
        plan.append(("select", "combobox", "Category", p["category"]))
    if family == "search_add":
        plan.append(("type", "textbox", "Search products", p["item"]))
    if family == "two_then_remove":
        plan += [("click", "button", f"Add {p['name']} to cart"), ("click", "button", f"Add {q['name']} to cart"),
                 ("click", "button", f"Remove {p['name']}")]  # fmt: skip
    else:
        plan += [
            ("click", "button", f"Add {name} to cart") for name, n in want.items() for _ in range(n)
        ]
    plan += [
        ("select", "combobox", "Shipping method", ship),
        ("click", "button", "Place order"),
        ("finish", ""),
    ]
    check = lambda s, a: bool(s["orders"]) and s["orders"][-1] == {"items": want, "shipping": ship}
    return (
        f"{text} and check out with {ship} shipping.",
        plan,
        check,
        [lambda s: s["cart"] == want or bool(s["orders"])],
    )


def _email(opt: tuple[str, str], rng: np.random.Generator, d: dict[str, Any]) -> tuple:
    action, how = opt
    E = d["emails"]
    e = E[int(rng.integers(len(E)))]
    label = f"Open email from {e['from']} about {e['subject']}"
    what = (
        f'the email from {e["from"]} about "{e["subject"]}"'
        if how == "sender"
        else f'the email about "{e["subject"]}"'
    )
    find = lambda s: next(x for x in s["emails"] if x["id"] == e["id"])
    if action in ("star", "archive", "delete"):
        key = {"star": "starred", "archive": "archived", "delete": "deleted"}[action]
        verb = action.title() if action != "star" else "Star"
        plan: list[Step] = [("click", "link", label), ("click", "button", verb), ("finish", "")]
        return (
            f"{action.title()} {what}.",
            plan,
            lambda s, a: find(s).get(key) is True,
            [lambda s: find(s)["read"]],
        )
    if action.endswith("_all"):
        verb = action.removesuffix("_all")
        key = {"star": "starred", "archive": "archived", "delete": "deleted"}[verb]
        mine = [x for x in E if x["from"] == e["from"]]
        plan = [
            st
            for x in mine
            for st in (
                ("click", "link", f"Open email from {x['from']} about {x['subject']}"),
                ("click", "button", verb.title()),
            )
        ] + [("finish", "")]
        ok = lambda s, a: (
            all(x.get(key) for x in s["emails"] if x["from"] == e["from"])
            and not any(x.get(key) for x in s["emails"] if x["from"] != e["from"])
        )
        return f"{verb.title()} every email from {e['from']}.", plan, ok, []
    if action == "answer_sender":
        plan = [("finish", e["from"])]
        return (
            f'Who sent the email about "{e["subject"]}"? Answer with the full name.',
            plan,
            lambda s, a: a.strip() == e["from"],
            [],
        )
    if action == "answer_day":
        day = next(x for x in DAYS if x in e["body"])
        plan = [("click", "link", label), ("finish", day)]
        return (
            f"Which day does {what} suggest? Answer with the day.",
            plan,
            lambda s, a: a.strip().lower() == day.lower(),
            [lambda s: find(s)["read"]],
        )
    if action == "reply":
        text = f"Sounds good, {e['from'].split()[0]}."
        plan = [
            ("click", "link", label),
            ("click", "button", "Reply"),
            ("type", "textbox", "Body", text),
            ("click", "button", "Send"),
            ("finish", ""),
        ]
        ok = lambda s, a: any(
            m["to"] == e["from"] and m["subject"] == "Re: " + e["subject"] and m["body"] == text
            for m in s["sent"]
        )
        return f'Reply to {what} with "{text}".', plan, ok, [lambda s: find(s)["read"]]
    to = f"{e['from'].split()[0].lower()}@example.com"
    subject = f"{e['subject']} follow-up" if how == "sender" else "Quick question"
    body = "See you soon."
    plan = [("click", "button", "Compose"), ("type", "textbox", "To", to), ("type", "textbox", "Subject", subject),
            ("type", "textbox", "Body", body), ("click", "button", "Send"), ("finish", "")]  # fmt: skip
    ok = lambda s, a: {"to": to, "subject": subject, "body": body} in s["sent"]
    return f'Send an email to {to} with subject "{subject}" and body "{body}".', plan, ok, []


def _settings(opt: tuple[str, str], rng: np.random.Generator, d: dict[str, Any]) -> tuple:
    family, arg = opt
    S = d["settings"]
    plan: list[Step] = []
    if family == "toggle":
        on = arg.endswith(":on")
        name = arg.split(":")[0]
        if S["toggles"][name] != on:
            plan.append(("click", "checkbox", name))
        text = f"Turn {'on' if on else 'off'} {name} and save."
        ok = lambda s, a: (
            bool(s["saved"])
            and s["saved"]["toggles"][name] == on
            and all(s["saved"]["toggles"][t] == S["toggles"][t] for t in S["toggles"] if t != name)
        )
    elif family == "toggle_pair":
        a_, b_ = arg.split("+")
        plan += [("click", "checkbox", t) for t in (a_, b_)]
        text = f"Switch {a_} and {b_} to the opposite of what they are now, then save."
        ok = lambda s, a: (
            bool(s["saved"]) and all(s["saved"]["toggles"][t] != S["toggles"][t] for t in (a_, b_))
        )
    elif family == "name":
        new = PEOPLE[int(rng.integers(len(PEOPLE)))].split()[0] + " " + arg
        plan.append(("type", "textbox", "Display name", new))
        text = f"Change your display name to {new} and save."
        ok = lambda s, a: bool(s["saved"]) and s["saved"]["name"] == new
    elif family == "locale":
        lang, tz = arg.split("|")
        plan += [("select", "combobox", "Language", lang), ("select", "combobox", "Time zone", tz)]
        text = f"Set the language to {lang} and the time zone to {tz}, then save."
        ok = lambda s, a: (
            bool(s["saved"]) and (s["saved"]["language"], s["saved"]["timezone"]) == (lang, tz)
        )
    else:  # "notifications_off"
        names = [t for t in TOGGLES if "notifications" in t]
        plan += [("click", "checkbox", t) for t in names if S["toggles"][t]]
        text = "Turn off every kind of notification and save."
        ok = lambda s, a: bool(s["saved"]) and not any(s["saved"]["toggles"][t] for t in names)
    plan += [("click", "button", "Save settings"), ("finish", "")]
    return text, plan, ok, []


def _booking(opt: tuple[str, str], rng: np.random.Generator, d: dict[str, Any]) -> tuple:
    family, arg = opt
    B = d["bookings"]
    b = B[int(rng.integers(len(B)))]
    if family == "book":
        arg, meal = arg.split("/")
        date = (
            d["dates"][0]
            if arg == "earliest"
            else d["dates"][-1]
            if arg == "latest"
            else d["dates"][int(rng.integers(len(d["dates"])))]
        )
        time = TIMES[int(rng.integers(3)) + (3 if meal == "dinner" else 0)]
        n, name = (
            int(rng.integers(1, 9)),
            "Robin " + PEOPLE[int(rng.integers(len(PEOPLE)))].split()[1],
        )
        when = {
            "earliest": "on the earliest date offered",
            "latest": "on the latest date offered",
        }.get(arg, f"on {date}")
        plan: list[Step] = [("select", "combobox", "Date", date), ("select", "combobox", "Time", time),
                            ("type", "spinbutton", "Guests", str(n)), ("type", "textbox", "Name", name), ("click", "button", "Book table"), ("finish", "")]  # fmt: skip
        want = {"name": name, "date": date, "time": time, "guests": n}
        return (
            f"Book a table for {n} {when} at {time} under the name {name}.",
            plan,
            lambda s, a: want in s["bookings"],
            [],
        )
    if family == "rebook":
        date = d["dates"][int(rng.integers(len(d["dates"])))]
        time = TIMES[int(rng.integers(len(TIMES)))]
        plan = [("click", "button", f"Cancel booking for {b['name']}"), ("select", "combobox", "Date", date), ("select", "combobox", "Time", time),
                ("type", "spinbutton", "Guests", str(b["guests"])), ("type", "textbox", "Name", b["name"]), ("click", "button", "Book table"), ("finish", "")]  # fmt: skip
        want = {"name": b["name"], "date": date, "time": time, "guests": b["guests"]}
        ok = lambda s, a: (
            want in s["bookings"]
            and all(
                x.get("cancelled") for x in s["bookings"] if x["name"] == b["name"] and x != want
            )
        )
        return (
            f"Move {b['name']}'s booking to {date} at {time} (same number of guests): cancel it and book again.",
            plan,
            ok,
            [],
        )
    if family == "cancel":
        plan = [("click", "button", f"Cancel booking for {b['name']}"), ("finish", "")]
        return (
            f"Cancel the booking for {b['name']}.",
            plan,
            lambda s, a: all(x.get("cancelled") for x in s["bookings"] if x["name"] == b["name"]),
            [],
        )
    key = arg  # "guests" | "date" | "time"
    plan = [("finish", str(b[key]))]
    q = {"guests": "How many guests", "date": "On which date", "time": "At what time"}[key]
    return (
        f"{q} is {b['name']}'s booking? Answer with just that.",
        plan,
        lambda s, a: a.strip() == str(b[key]),
        [],
    )


def _files(opt: tuple[str, str], rng: np.random.Generator, d: dict[str, Any]) -> tuple:
    family, arg = opt
    F = d["files"]
    # the filter offers only the types the page has: with no file of this type, the honest
    # plan does without it (selecting a missing option hangs the browser)
    by_type: list[Step] = [("select", "combobox", "Filter by type", arg)]
    if not any(x["type"] == arg for x in F):
        by_type = []
    f = F[int(rng.integers(len(F)))]
    alive = lambda s: [x["name"] for x in s["files"] if not x.get("deleted")]
    if family == "delete_one":
        plan: list[Step] = [
            ("click", "checkbox", f"Select {f['name']}"),
            ("click", "button", "Delete selected"),
            ("finish", ""),
        ]
        return (
            f"Delete the file {f['name']}.",
            plan,
            lambda s, a: sorted(alive(s)) == sorted(x["name"] for x in F if x is not f),
            [],
        )
    if family == "delete_two":
        g = next(x for x in F if x is not f)
        plan = [
            ("click", "checkbox", f"Select {f['name']}"),
            ("click", "checkbox", f"Select {g['name']}"),
            ("click", "button", "Delete selected"),
            ("finish", ""),
        ]
        return (
            f"Delete {f['name']} and {g['name']}.",
            plan,
            lambda s, a: sorted(alive(s)) == sorted(x["name"] for x in F if x not in (f, g)),
            [],
        )
    if family == "smallest_type":
        of = [x for x in F if x["type"] == arg] or F
        small = min(of, key=lambda x: x["size"])
        plan = [*by_type, ("finish", small["name"])]
        return (
            f"What is the name of the smallest {arg if of is not F else ''} file?".replace(
                "  ", " "
            ),
            plan,
            lambda s, a: a.strip() == small["name"],
            [],
        )
    if family == "delete_type":
        gone = [x["name"] for x in F if x["type"] == arg]
        plan = (
            by_type
            + [("click", "checkbox", f"Select {n}") for n in gone]
            + [("click", "button", "Delete selected"), ("finish", "")]
        )
        return (
            f"Delete all {arg} files.",
            plan,
            lambda s, a: sorted(alive(s)) == sorted(x["name"] for x in F if x["type"] != arg),
            [],
        )
    if family == "delete_largest_type":
        of = [x for x in F if x["type"] == arg] or F
        big = max(of, key=lambda x: x["size"])
        plan = [*by_type, ("click", "button", "Sort by size"), ("click", "checkbox", f"Select {big['name']}"),
                ("click", "button", "Delete selected"), ("finish", "")]  # fmt: skip
        what = f"the largest {arg} file" if of is not F else "the largest file"
        return (
            f"Delete {what}.",
            plan,
            lambda s, a: sorted(alive(s)) == sorted(x["name"] for x in F if x is not big),
            [],
        )
    if family == "answer_sorted":
        key, label = {
            "size": ("size", "largest"),
            "date": ("modified", "most recently modified"),
            "name": ("name", "alphabetically first"),
        }[arg]
        best = min(F, key=lambda x: x["name"]) if arg == "name" else max(F, key=lambda x: x[key])
        plan = [("click", "button", f"Sort by {arg}"), ("finish", best["name"])]
        return (
            f"Sort the files by {arg} and tell me the name of the {label} file.",
            plan,
            lambda s, a: a.strip() == best["name"] and s["sort"] == key,
            [],
        )
    count = sum(x["type"] == arg for x in F)
    plan = [*by_type, ("finish", str(count))]
    return (
        f"How many {arg} files are there? Answer with a number.",
        plan,
        lambda s, a: a.strip() == str(count),
        [],
    )


SHIPPING = ["standard", "express", "overnight"]
SHOP = [
    "n_of",
    "cheapest_in_category",
    "cheapest_item",
    "priciest_color",
    "under_price",
    "two_then_remove",
    "search_add",
    "category_add",
]
TEMPLATES: list[tuple[str, tuple[str, str]]] = (
    [("shop", (f, s)) for f in SHOP for s in SHIPPING]
    + [
        ("email", (a, h))
        for a in ("star", "archive", "delete", "answer_day", "reply", "compose")
        for h in ("sender", "subject")
    ]
    + [("email", (a, "")) for a in ("star_all", "archive_all", "delete_all", "answer_sender")]
    + [("settings", ("toggle", f"{t}:{v}")) for t in TOGGLES for v in ("on", "off")]
    + [("settings", ("toggle_pair", f"{a}+{b}")) for a, b in itertools.pairwise(TOGGLES)]
    + [("settings", ("name", s)) for s in ("Lee", "Quinn", "Rivera")]
    + [
        ("settings", ("locale", f"{lang}|{tz}"))
        for lang, tz in zip(LANGUAGES[1:], TIMEZONES[1:], strict=True)
    ]
    + [("settings", ("notifications_off", ""))]
    + [
        ("booking", ("book", f"{w}/{m}"))
        for w in ("earliest", "latest", "date")
        for m in ("lunch", "dinner")
    ]
    + [("booking", ("cancel", "")), ("booking", ("rebook", ""))]
    + [("booking", ("answer", k)) for k in ("guests", "date", "time")]
    + [("files", ("delete_one", "")), ("files", ("delete_two", ""))]
    + [
        ("files", (f, t))
        for f in ("delete_type", "delete_largest_type", "count_type", "smallest_type")
        for t in FILE_TYPES
    ]
    + [("files", ("answer_sorted", k)) for k in ("size", "date", "name")]
)
BUILDERS = {
    "shop": _shop,
    "email": _email,
    "settings": _settings,
    "booking": _booking,
    "files": _files,
}


def template_id(app: str, opt: tuple[str, str]) -> str:
    return f"{app}/{opt[0]}" + (f"/{opt[1]}" if opt[1] else "")


def make_task(index: int, seed: int = 0) -> GUITask:
    """Task ``index`` (template ``index % len(TEMPLATES)``; page data from ``seed``)."""
    app, opt = TEMPLATES[index % len(TEMPLATES)]
    page_seed = seed * 100_003 + index
    rng = np.random.default_rng([seed, index])
    text, plan, check, subgoals = BUILDERS[app](opt, rng, app_data(app, page_seed))
    return GUITask(template_id(app, opt), app, page_seed, text, plan, check, subgoals)
