"""How long the flow view (``/admin/``) takes to draw the demo's flows in headless Chromium.

    python bench/flowview.py                         # 10 page loads
    python bench/flowview.py --runs 20 --screenshots /tmp/shots

``flowrun flows/kurento.yaml`` runs as a child process (embedded media server and PostgreSQL,
data in a temporary folder: tests/demo/e2ekit.py); Chromium is Debian's, driven by Python
Playwright. Each run opens the page in a new browser context (nothing cached: a first visit),
then as often in one context (opened again: the browser keeps the layouts it computed, see
``LayoutCache`` in static/graph.js), and reads the page's own marks, in milliseconds since the
navigation started: ``fetched`` when the page has the flows and the nodes' state, ``first``
when the flow shown first is drawn, ``all`` when every flow is laid out (elkjs, in a worker)
and drawn; and ``draw``, the part of that spent making the SVG (the rest is the layout). The
target (issue 16) is ``all`` under 1 s for the demo's ~160 nodes in 14 flows.

``--screenshots DIR`` also saves the signaling and metrics flows as the page shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in ("demo", "media"):
    sys.path.insert(0, str(REPO / "tests" / folder))

from e2ekit import chromium, start_demo  # noqa: E402


async def load(browser: Any, url: str, flow: str = "", context: Any = None
               ) -> tuple[Any, dict[str, float]]:
    """Open the page in ``context`` (default: a new one, with nothing cached) and read its
    marks."""
    if context is None:
        context = await browser.new_context(viewport={"width": 1600, "height": 900})
    page = await context.new_page()
    await page.goto(f"{url}/admin/" + (f"#{flow}" if flow else ""))
    await page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
    marks = await page.evaluate("""() => ({fetched: window.flowview.fetchedMs,
                                           first: window.flowview.firstMs,
                                           all: window.flowview.renderMs,
                                           draw: window.flowview.drawMs,
                                           nodes: document.querySelectorAll('svg.flow .node')
                                                  .length})""")
    return context, marks


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--screenshots", type=Path, help="save screenshots of two flows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowview-bench-") as folder:
        demo = start_demo(Path(folder))
        try:
            async with chromium() as browser:
                context, warmup = await load(browser, demo.url)  # Chromium's own start
                await context.close()
                cold, again = [], []
                for _ in range(args.runs):
                    context, marks = await load(browser, demo.url)
                    cold.append(marks)
                    await context.close()
                context, _ = await load(browser, demo.url)
                for _ in range(args.runs):  # the same browser again: layouts it keeps
                    again.append((await load(browser, demo.url, context=context))[1])
                await context.close()
                if args.screenshots:
                    await screenshots(browser, demo.url, args.screenshots)
        finally:
            demo.stop()
    print(f"flow view, demo flows: {warmup['nodes']} nodes drawn; {args.runs} page loads; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, runs in (("first visit", cold), ("opened again", again)):
        print(f"{name}:")
        for key in ("fetched", "first", "all", "draw"):
            values = [r[key] for r in runs]
            print(f"  {key:>7}: median {statistics.median(values):.0f} ms, "
                  f"min {min(values):.0f}, max {max(values):.0f}")


async def screenshots(browser: Any, url: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for flow in ("signaling", "metrics"):
        context, _ = await load(browser, url, flow)
        page = context.pages[0]
        await page.click('[data-zoom="fit"]')
        await page.wait_for_timeout(6000)  # a metrics round or two: counters and statuses
        await page.screenshot(path=str(folder / f"flowview-{flow}.png"))
        await context.close()
        print(f"saved {folder / f'flowview-{flow}.png'}")


if __name__ == "__main__":
    asyncio.run(main())
