"""The local web applications of ``gui`` and their seeded data, served over HTTP.

Five single-page apps (``shop``, ``email``, ``settings``, ``booking``, ``files``), each one
HTML file here. The server renders ``/<app>?seed=N`` with that seed's data embedded
(``window.DATA``); each app keeps its state in ``window.appState`` for the task checkers.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

APPS = ("shop", "email", "settings", "booking", "files")
HERE = Path(__file__).parent
ITEMS = {"mug": "kitchen", "kettle": "kitchen", "lamp": "home", "chair": "home",
         "notebook": "office", "pen": "office", "backpack": "travel", "bottle": "travel"}  # fmt: skip
COLORS = ["blue", "red", "green", "black"]
PEOPLE = ["Ada Morrow", "Bruno Kell", "Cora Fenn", "Dev Patel", "Elin Sato", "Femi Ade",
          "Gus Olar", "Hana Brik", "Ivo Lund", "Jia Wen"]  # fmt: skip
SUBJECTS = ["Quarterly report", "Team lunch", "Invoice 42", "Trip plans", "Design review",
            "Budget", "Offsite", "Release notes", "Hiring", "Book club"]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
TOGGLES = ["Dark mode", "Email notifications", "SMS notifications", "Push notifications",
           "Two-factor authentication", "Auto-play videos"]  # fmt: skip
LANGUAGES = ["English", "French", "German", "Spanish", "Japanese"]
TIMEZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
TIMES = ["12:00", "12:30", "13:00", "18:00", "19:00", "20:00"]
FILE_TYPES = ["pdf", "docx", "png", "csv", "txt"]
WORDS = ["report", "notes", "photo", "budget", "draft", "plan", "summary", "scan", "data", "memo"]


def app_data(app: str, seed: int) -> dict[str, Any]:
    """The seeded content of ``app`` (the same seed gives the same page)."""
    rng = np.random.default_rng([seed, APPS.index(app)])
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    if app == "shop":
        products = []
        for item, category in ITEMS.items():
            for color in rng.choice(COLORS, 3, replace=False):
                price = round(float(rng.uniform(4, 60)), 2)
                products.append({"name": f"{color.title()} {item.title()}", "item": item,
                                 "color": str(color), "category": category, "price": price})  # fmt: skip
        return {"products": products}
    if app == "email":
        emails = []
        for i in range(12):
            sender, subject = pick(PEOPLE), SUBJECTS[i % len(SUBJECTS)] + ("" if i < 10 else " 2")
            emails.append({"id": i, "from": sender, "subject": subject,
                           "body": f"Can we talk about it on {pick(DAYS)}?",
                           "read": bool(rng.random() < 0.4), "starred": False})  # fmt: skip
        return {"emails": emails}
    if app == "settings":
        toggles = {t: bool(rng.random() < 0.5) for t in TOGGLES}
        settings = {
            "toggles": toggles,
            "name": pick(PEOPLE),
            "language": "English",
            "timezone": "UTC",
        }
        return {"settings": settings, "languages": LANGUAGES, "timezones": TIMEZONES}
    if app == "booking":
        dates = [f"2026-12-{d:02d}" for d in range(1, 8)]
        names = rng.choice(PEOPLE, 4, replace=False)
        bookings = [{"name": str(n), "date": pick(dates), "time": pick(TIMES),
                     "guests": int(rng.integers(1, 9))} for n in names]  # fmt: skip
        return {"dates": dates, "times": TIMES, "bookings": bookings}
    files: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(files) < 14:
        name = f"{pick(WORDS)}-{int(rng.integers(1, 99))}.{pick(FILE_TYPES)}"
        if name not in seen:
            seen.add(name)
            files.append({"name": name, "type": name.rsplit(".", 1)[1],
                          "size": int(rng.integers(1, 5000)),
                          "modified": f"2026-{int(rng.integers(1, 12)):02d}-{int(rng.integers(1, 28)):02d}"})  # fmt: skip
    return {"files": files}


@cache
def page(app: str) -> str:
    return (HERE / f"{app}.html").read_text()


class AppServer:
    """Serves every app on 127.0.0.1 (a free port) from a daemon thread."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                app = url.path.strip("/")
                if app in APPS:
                    seed = int(parse_qs(url.query).get("seed", ["0"])[0])
                    data = json.dumps(app_data(app, seed))
                    body, status = page(app).replace("/*DATA*/", f"window.DATA = {data};"), 200
                else:
                    body, status = "<html><body><h1>Not found</h1></body></html>", 404
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, app: str, seed: int) -> str:
        return f"{self.origin}/{app}?seed={seed}"


@cache
def server() -> AppServer:
    """One app server per process."""
    return AppServer()
