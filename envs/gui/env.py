"""``gui``: tasks in local web apps, in a real Chromium driven by Playwright (BrowserGym /
WebArena style).

Observation: the URL, the page's accessibility tree (a stable id per interactive element),
the last action's error if any, and with ``observation=both`` (``screenshot=true``) a PNG of
the page; ``observation=screenshot`` shows the PNG without the tree. Actions are tools:
``click(id)``, ``type(id, text)``, ``select(id, option)``, ``scroll(direction)``,
``press(key)``, ``navigate_back()``, ``finish(answer)``, and the pixel tools ``click_at(x, y)``
and ``write(text)`` with ``coordinates=true`` or ``observation=screenshot``. The browser
reaches only the local app; invalid or detached ids, navigation away and page crashes come
back as observations.

Reward: ``success`` (1 when the task's checker accepts the app's final state and answer, at
``finish`` or at the turn limit). Signals per turn: ``valid_action`` (1 when every action of the
turn ran, whatever their number) and ``progress`` (the change in the share of the task's
subgoals met: an episode's sum is the share met at the end, so undoing and redoing earns
nothing).
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

from agentgym.env import AgentEnv
from agentgym.envs.gui.apps import server
from agentgym.envs.gui.baselines import BASELINES
from agentgym.envs.gui.browser import TREE_JS, browsers, new_page
from agentgym.envs.gui.config import GUIConfig
from agentgym.envs.gui.tasks import TEMPLATES, GUITask, make_task
from agentgym.errors import EnvError, ToolError
from agentgym.tools import Tool, tool
from agentgym.types import Message

WRITE_LIMIT = 500
"""Most characters ``write`` types (Playwright types them one key press at a time)."""


class GUIEnv(AgentEnv):
    """Complete tasks in web apps in a real Chromium, from the page tree or pixels.

    See the module docstring."""

    baselines = BASELINES
    config_model = GUIConfig
    cfg: GUIConfig

    @classmethod
    def shows_images(cls, config: dict[str, Any]) -> bool:
        return GUIConfig(**config).shows_screenshot

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.indices = [
            i for i, (app, _) in enumerate(TEMPLATES) if not cfg.apps or app in cfg.apps
        ]
        self.server = server()
        self.browsers: Any = None
        self.context: Any = None
        self.page: Any = None
        self.task_: GUITask | None = None
        self._progress = 0.0
        self._acted_turn, self._all_valid = -1, True  # for valid_action, once a turn

    # ---- episode ------------------------------------------------------------------------

    async def atask(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        n = len(self.indices)
        k = self.task_seed if self.task_seed is not None else int(self.np_random.integers(1 << 30))
        self.task_ = t = make_task(
            self.indices[k % n] + len(TEMPLATES) * (k // n), self.cfg.task_seed
        )
        if self.browsers is None:
            self.browsers = browsers()
            browser = await self.browsers.acquire()
        else:
            browser = await self.browsers.live()
        await self._close_context()
        self.context, self.page = await new_page(browser, self.server.origin, self.cfg.viewport)
        self.page.set_default_timeout(self.cfg.action_timeout_ms)
        self.page.set_default_navigation_timeout(30_000)
        await self.page.goto(self.server.url(t.app, t.seed))
        self._progress, self._acted_turn = 0.0, -1
        obs = await self.observe()
        first = Message(
            role="user", content=f"Task: {t.instruction}\n\n{obs.content}", images=obs.images
        )
        return [first], {"template": t.template, "plan": [list(s) for s in t.plan]}

    async def observe(self, error: str | None = None) -> Message:
        """The observation message: URL, tree, error, screenshot."""
        page = self.page
        try:
            tree = await page.evaluate(TREE_JS)
        except Exception as exc:  # a crashed or closed page
            self._unless_browser_gone(exc)
            return Message(
                role="tool",
                content=f"Error: the page is unusable ({type(exc).__name__}); it was reopened.\n"
                + (await self._reopen()),
            )
        seen = tree if self.cfg.observation != "screenshot" else "(the page is in the screenshot)"
        text = f"URL: {page.url}\n{seen}" + (f"\nLast action failed: {error}" if error else "")
        images = []
        if self.cfg.shows_screenshot:
            png = await page.screenshot(type="png")
            images.append("data:image/png;base64," + base64.b64encode(png).decode())
        return Message(role="tool", content=text, images=images)

    async def _reopen(self) -> str:
        assert self.task_ is not None
        self.page = await self.context.new_page()
        await self.page.goto(self.server.url(self.task_.app, self.task_.seed))
        return f"URL: {self.page.url}\n" + await self.page.evaluate(TREE_JS)

    async def _state(self) -> dict[str, Any]:
        try:
            return dict(await self.page.evaluate("window.appState || {}"))
        except Exception as exc:
            self._unless_browser_gone(exc)
            return {}

    def _unless_browser_gone(self, exc: Exception) -> None:
        """Raise ``EnvError`` if ``exc`` came from a dead browser (it crashed or was killed):
        not the model's doing, so never an observation or a zero reward; the next reset
        launches a new browser and a rerun plays this episode again."""
        context = self.context
        if context is None or context.browser is None or not context.browser.is_connected():
            why = f"the browser (Chromium) is gone ({type(exc).__name__}): it crashed or was killed"
            raise EnvError(self.env_id, self.turn, None, why) from exc

    async def _act(self, action: Any) -> Message:
        """Run ``action`` (an async callable), then observe; errors become observations."""
        error = None
        try:
            await action()
        except ToolError as exc:
            error = str(exc)
        except Exception as exc:  # Playwright: timeouts, detached nodes, closed pages
            self._unless_browser_gone(exc)
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if self._acted_turn != self.turn:  # the turn's first action
            self._acted_turn, self._all_valid = self.turn, True
            self.add_signal("valid_action", 1.0)
        if error is not None and self._all_valid:
            self._all_valid = False
            self.add_signal("valid_action", -1.0)
        await self._track_progress()
        return await self.observe(error)

    async def _track_progress(self) -> None:
        assert self.task_ is not None
        goals = self.task_.subgoals
        if goals:
            state = await self._state()
            done = sum(bool(_safe(g, state)) for g in goals) / len(goals)
            self.add_signal("progress", done - self._progress)
            self._progress = done

    def _el(self, id: int) -> Any:
        return self.page.locator(f'[data-agid="{id}"]')

    async def _one(self, id: int) -> Any:
        el = self._el(id)
        if await el.count() == 0:
            raise ToolError(
                f"there is no element [{id}] on the page now; use an id from the latest tree"
            )
        return el

    async def aon_turn_limit(self) -> None:
        """Out of turns: judge the state as it is (no answer)."""
        assert self.task_ is not None
        ok = bool(_safe(lambda s: self.task_.check(s, ""), await self._state()))
        self.add_reward("success", float(ok))
        self.end(success=ok)

    async def _close_context(self) -> None:
        context, self.context = self.context, None
        if context is not None:
            with contextlib.suppress(Exception):  # its browser may have died
                await context.close()

    async def arelease(self) -> None:
        await self._close_context()
        if self.browsers is not None:
            await self.browsers.release()
            self.browsers = None

    def active_tools(self) -> dict[str, Tool]:
        hide = {"click_at", "write"} if not self.cfg.pointer else set()
        return {name: t for name, t in self.tools.items() if name not in hide}

    # ---- tools --------------------------------------------------------------------------

    @tool
    async def click(self, id: int) -> Message:
        """Click an element.

        Args:
            id: The element's id in the tree.
        """
        return await self._act(lambda: self._do(id, "click"))

    @tool
    async def type(self, id: int, text: str) -> Message:
        """Replace the text of a text field.

        Args:
            id: The field's id.
            text: The text to type.
        """
        return await self._act(lambda: self._do(id, "fill", text))

    @tool
    async def select(self, id: int, option: str) -> Message:
        """Choose an option of a drop-down.

        Args:
            id: The drop-down's id.
            option: The option's value.
        """
        return await self._act(lambda: self._do(id, "select_option", option))

    async def _do(self, id: int, method: str, *args: Any) -> None:
        el = await self._one(id)
        await getattr(el.first, method)(*args)

    @tool
    async def scroll(self, direction: str) -> Message:
        """Scroll the page.

        Args:
            direction: "up" or "down".
        """
        if direction not in ("up", "down"):
            raise ToolError(f"direction must be 'up' or 'down', got {direction!r}")
        dy = 600 if direction == "down" else -600
        return await self._act(lambda: self.page.mouse.wheel(0, dy))

    @tool
    async def press(self, key: str) -> Message:
        """Press a key (e.g. Enter, Tab, Escape).

        Args:
            key: The key's name.
        """
        return await self._act(lambda: self.page.keyboard.press(key))

    @tool
    async def navigate_back(self) -> Message:
        """Go back to the previous page."""
        return await self._act(lambda: self.page.go_back())

    @tool
    async def click_at(self, x: int, y: int) -> Message:
        """Click at a point of the screenshot (coordinate mode).

        Args:
            x: Pixels from the left.
            y: Pixels from the top.
        """
        w, h = self.cfg.viewport
        if not (0 <= x < w and 0 <= y < h):
            raise ToolError(f"({x}, {y}) is outside the {w}x{h} screen")
        return await self._act(lambda: self.page.mouse.click(x, y))

    @tool
    async def write(self, text: str) -> Message:
        """Type text where the keyboard focus is (after click_at on a field; coordinate mode).

        Args:
            text: The text to type.
        """
        if len(text) > WRITE_LIMIT:  # typed key by key: a long text would hold the turn
            raise ToolError(f"text is {len(text)} characters; write types at most {WRITE_LIMIT}")
        return await self._act(lambda: self.page.keyboard.type(text))

    @tool
    async def finish(self, answer: str = "") -> str:
        """Finish the task; give an answer when the task asks a question.

        Args:
            answer: The answer, or empty.
        """
        assert self.task_ is not None
        ok = bool(_safe(lambda s: self.task_.check(s, answer), await self._state()))
        self.add_reward("success", float(ok))
        self.end(success=ok, answer=answer, template=self.task_.template)
        return "finished"


def _safe(fn: Any, state: dict[str, Any]) -> Any:
    """A checker on a state that may lack keys (a crashed page) is simply not satisfied."""
    try:
        return fn(state)
    except (KeyError, TypeError, IndexError, StopIteration, AttributeError):
        return False
