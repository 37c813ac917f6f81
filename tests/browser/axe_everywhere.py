"""axe-core on every page the browser tests visit, at phone and desktop sizes (issue 18).

Every browser context the tests open gets axe-core (the copy that axe-playwright-python
ships) as an init script: when one of our pages has loaded, it asks the collector whether
that page (its path, ids folded: /events/{id}) was already checked at this size; if not,
it runs axe there and then, on the page as the test left it, and reports the serious and
critical violations. When a context closes, the pages it visited at one size only are
opened again, in that context (same login), at the other size. The autouse fixture in
conftest.py fails the test during which a violation was first found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
SERIOUS = ("serious", "critical")
RUNNER = """
(() => {
  if (window.top !== window) return;
  const run = async () => {
    let wanted = false;
    try {
      wanted = document.contentType === 'text/html' && window.__axeWanted
        && await window.__axeWanted(location.href, innerWidth);
    } catch (e) { /* the page was left meanwhile */ }
    if (!wanted) { window.__axeDone = true; return; }
    const results = await axe.run(document, {resultTypes: ['violations']});
    const found = results.violations.filter(v => SERIOUS_IMPACTS.includes(v.impact)).map(v =>
      `${v.id} (${v.impact}): ${v.help} — ` + v.nodes.slice(0, 3).map(n => n.target[0]).join('; '));
    try { await window.__axeReport(location.href, innerWidth, found); } catch (e) {}
    window.__axeDone = true;
  };
  window.addEventListener('load', () => setTimeout(run, 30));
})();
""".replace("SERIOUS_IMPACTS", json.dumps(list(SERIOUS)))
_ID = re.compile(r"^\d+$|^[0-9]+-[A-Za-z0-9_-]+$|^[A-Za-z0-9_-]{16,}$")


def size_of(width: int) -> str:
    return "phone" if width < 768 else "desktop"


def pattern(url: str) -> str:
    """/console/villages/3/residents → /console/villages/{id}/residents; tokens folded too."""
    parts = urlsplit(url).path.split("/")
    return "/".join("{id}" if _ID.match(p) else p for p in parts) or "/"


def revisitable(url: str) -> bool:
    """A GET that can be made again without consuming anything (not a sign-in callback)."""
    split = urlsplit(url)
    return "callback" not in split.path and not {"code", "state"} & set(parse_qs(split.query))


@dataclass
class Collector:
    origin: str
    checked: set[tuple[str, str]] = field(default_factory=set)
    found: list[str] = field(default_factory=list)  # not yet blamed on a test

    def script(self) -> str:
        import axe_playwright_python

        axe = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
        return axe + RUNNER

    def wanted(self, url: str, width: int) -> bool:
        return url.startswith(self.origin) and (pattern(url), size_of(width)) not in self.checked

    def report(self, url: str, width: int, violations: list[str]) -> None:
        key = (pattern(url), size_of(width))
        if key in self.checked:
            return
        self.checked.add(key)
        self.found += [f"{key[0]} at {key[1]} size: {v}" for v in violations]

    def take_found(self) -> list[str]:
        found, self.found = self.found, []
        return found


class AuditedContext:
    """A browser context whose pages are checked as they load (delegates the rest)."""

    def __init__(self, context, collector: Collector) -> None:
        self._context, self._collector, self._visited = context, collector, {}
        context.add_init_script(script=collector.script())
        context.expose_function("__axeWanted", self._wanted)
        context.expose_function("__axeReport", collector.report)

    def _wanted(self, url: str, width: int) -> bool:
        if url.startswith(self._collector.origin) and revisitable(url):
            self._visited.setdefault(pattern(url), url)
        return self._collector.wanted(url, width)

    def close(self, **kwargs) -> None:
        """Check the pages seen at one size only at the other one, then close."""
        for key, url in list(self._visited.items()):
            missing = [s for s in SIZES if (key, s) not in self._collector.checked]
            for size in missing:
                page = self._context.new_page()
                page.set_viewport_size(SIZES[size])
                try:
                    page.goto(url)
                    page.wait_for_function("() => window.__axeDone === true", timeout=10_000)
                finally:
                    page.close()
        self._context.close(**kwargs)

    def __getattr__(self, name):
        return getattr(self._context, name)


class AuditedBrowser:
    def __init__(self, browser, collector: Collector) -> None:
        self._browser, self._collector = browser, collector

    def new_context(self, **kwargs) -> AuditedContext:
        return AuditedContext(self._browser.new_context(**kwargs), self._collector)

    def __getattr__(self, name):
        return getattr(self._browser, name)
