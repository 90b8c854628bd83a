"""Chromium under Playwright: one browser per event loop, shared by every environment on it
(fresh context per episode), closed when the last environment lets go. Every request that is
not for the local app server is aborted.

The accessibility tree: interactive elements get a stable ``data-agid`` (kept while the
element lives, new ones numbered on), listed as ``[id] role "name" value=...`` in DOM order,
with the text of headings, list items, rows and paragraphs as ``- text`` lines for context.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from typing import Any

from agentgym._imports import require
from agentgym.errors import EnvError

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

TREE_JS = r"""
() => {
  const W = window; W.__agid = W.__agid || 0;
  const interactive = 'a[href],button,input,select,textarea,[role=button],[onclick]';
  const roleOf = e => e.getAttribute('role') || ({A: 'link', BUTTON: 'button', SELECT: 'combobox',
      TEXTAREA: 'textbox'})[e.tagName] || (e.tagName == 'INPUT' ? ({checkbox: 'checkbox',
      radio: 'radio', number: 'spinbutton', button: 'button', submit: 'button'})[e.type] || 'textbox' : 'generic');
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const nameOf = e => (e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].innerText)
      || e.innerText || e.value || '').trim().replace(/\s+/g, ' ').slice(0, 80);
  const cut = (s, n) => s.length > n ? `${s.slice(0, n)}... (${s.length} characters)` : s;
  const lines = [];
  const own = e => [...e.childNodes].filter(n => n.nodeType == 3).map(n => n.textContent).join(' ').trim().replace(/\s+/g, ' ');
  for (const e of document.body.querySelectorAll('*')) {
    if (!visible(e)) continue;
    if (e.matches(interactive)) {
      if (!e.dataset.agid) e.dataset.agid = ++W.__agid;
      const role = roleOf(e);
      let extra = '';
      if (role == 'checkbox' || role == 'radio') extra = e.checked ? ' checked' : ' unchecked';
      else if (role == 'combobox') extra = ` value="${cut(e.value, 80)}" options=[${cut([...e.options].map(o => o.value).join(', '), 400)}]`;
      else if (role == 'textbox' || role == 'spinbutton') extra = ` value="${cut(e.value, 200)}"`;
      lines.push(`[${e.dataset.agid}] ${role} "${nameOf(e)}"${extra}`);
    } else if (/^(H1|H2|H3|LI|TD|P|LABEL|SECTION)$/.test(e.tagName)) {
      const t = own(e); if (t) lines.push(`- ${t.slice(0, 120)}`);
    }
  }
  return lines.join('\n');
}
"""


class Browsers:
    """The browser of one event loop, with a count of the environments using it."""

    def __init__(self) -> None:
        self.pw: Any = None
        self.browser: Any = None
        self.users = 0
        self.lock = asyncio.Lock()

    async def acquire(self) -> Any:
        """Count one more user; the browser (launched if none)."""
        async with self.lock:
            self.users += 1
        return await self.live()

    async def live(self) -> Any:
        """The browser, launched again if it crashed or was killed since the last call (the
        episodes that had pages in it failed; the next ones get a working one)."""
        async with self.lock:
            if self.browser is not None and not self.browser.is_connected():
                await self._stop()
            if self.browser is None:
                chromium = shutil.which("chromium") or shutil.which("chromium-browser")
                if chromium is None:
                    raise EnvError(
                        "gui", 0, None, "chromium is not installed; run the README's setup"
                    )
                api = require("playwright.async_api", "browser")
                self.pw = await api.async_playwright().start()
                self.browser = await self.pw.chromium.launch(executable_path=chromium, args=ARGS)
            return self.browser

    async def _stop(self) -> None:
        browser, pw, self.browser, self.pw = self.browser, self.pw, None, None
        with contextlib.suppress(Exception):  # a dead browser may not close cleanly
            await asyncio.wait_for(browser.close(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pw.stop(), 10)

    async def release(self) -> None:
        async with self.lock:
            self.users -= 1
            if self.users == 0 and self.browser is not None:
                await self._stop()
                for key, value in list(_BY_LOOP.items()):
                    if value is self:
                        del _BY_LOOP[key]


_BY_LOOP: dict[int, Browsers] = {}


def browsers() -> Browsers:
    """The ``Browsers`` of the running event loop."""
    loop = asyncio.get_running_loop()
    return _BY_LOOP.setdefault(id(loop), Browsers())


async def new_page(browser: Any, origin: str, viewport: tuple[int, int]) -> tuple[Any, Any]:
    """A fresh context and page that may reach only ``origin``."""
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})

    async def guard(route: Any) -> None:
        if route.request.url.startswith(origin + "/") or route.request.url == origin:
            await route.continue_()
        else:
            await route.abort("blockedbyclient")

    async def refuse(ws: Any) -> None:  # context.route does not see WebSockets; the apps use none
        await ws.close(code=1008, reason="agentgym: only the app is reachable")

    await context.route("**/*", guard)
    await context.route_web_socket(re.compile(".*"), refuse)
    return context, await context.new_page()
