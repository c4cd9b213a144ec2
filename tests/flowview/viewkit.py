"""The flow view page (``/admin/``) as a person uses it, for the browser tests: tabs, nodes,
inject buttons, the debug sidebar, the node panel. Reads go through the DOM the page drew.

The page's Content-Security-Policy forbids ``eval``, so waits poll with
:func:`e2ekit.eventually` and ``page.evaluate`` (which the policy does not cover) rather than
Playwright's ``wait_for_function``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from e2ekit import eventually

TIMEOUT = 20.0  # seconds for something the page should show


class FlowView:
    """One tab of the flow view in its own browser context."""

    def __init__(self, context: Any, page: Any):
        self.context = context
        self.page = page
        self.errors: list[str] = []
        self.responses: list[Any] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("response", lambda response: self.responses.append(response))

    @classmethod
    async def open(cls, browser: Any, base_url: str, flow: str | None = None) -> FlowView:
        context = await browser.new_context(viewport={"width": 1500, "height": 900})
        page = await context.new_page()
        view = cls(context, page)
        await page.goto(f"{base_url}/admin/" + (f"#{flow}" if flow else ""))
        await page.wait_for_selector("body[data-ready=true]", state="attached",
                                     timeout=TIMEOUT * 1000)
        await page.wait_for_selector("#connection.open", state="attached",
                                     timeout=TIMEOUT * 1000)
        return view

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.context.close()

    # -- the flows ------------------------------------------------------------------------------

    async def show(self, flow: str) -> None:
        await self.page.click(f'#tabs .tab[data-flow="{flow}"]')
        await self.page.wait_for_selector(f'svg.flow.active[data-flow="{flow}"]')

    async def current_flow(self) -> str:
        return str(await self.page.get_attribute("#tabs .tab.active", "data-flow"))

    async def drawn(self) -> list[dict[str, Any]]:
        """The nodes drawn on the flow shown: id, type, label and the body's box on screen;
        config nodes (chips above the flow) with ``config: True``."""
        return list(await self.page.evaluate("""() => {
            const box = (el) => { const r = el.getBoundingClientRect();
                                  return {x: r.x, y: r.y, w: r.width, h: r.height}; };
            const nodes = [...document.querySelectorAll('svg.flow.active .node')].map(n => ({
                id: n.dataset.id, type: n.dataset.type, config: false,
                label: n.querySelector('.node-label')?.textContent ?? '',
                disabled: n.classList.contains('disabled'),
                ...box(n.querySelector('.node-body'))}));
            const chips = [...document.querySelectorAll('#config-bar .config-chip')].map(c => ({
                id: c.dataset.id, type: c.dataset.type, config: true,
                label: c.querySelector('.chip-name').textContent}));
            return nodes.concat(chips);
        }"""))

    async def groups(self) -> list[dict[str, Any]]:
        return list(await self.page.evaluate("""() =>
            [...document.querySelectorAll('svg.flow.active .group')].map(g => {
                const r = g.querySelector('rect').getBoundingClientRect();
                return {name: g.querySelector('text').textContent,
                        x: r.x, y: r.y, w: r.width, h: r.height}; })"""))

    async def status(self, node_id: str) -> str:
        """The status text under a node ("" when it shows none)."""
        return str(await self.page.evaluate("""(id) => {
            const chip = document.querySelector(`.config-chip[data-id="${id}"] .chip-status`);
            if (chip) return chip.hidden ? '' : chip.textContent;
            const s = document.querySelector(`svg.flow .node[data-id="${id}"] .node-status`);
            return s && s.getAttribute('visibility') === 'visible' ? s.dataset.text || '' : '';
        }""", node_id))

    async def counters(self, node_id: str) -> str:
        return str(await self.page.evaluate(
            """(id) => document.querySelector(`.node[data-id="${id}"] .node-counters`)
                       ?.textContent ?? ''""", node_id))

    async def wait_for(self, check: Any, what: str, timeout: float = TIMEOUT) -> Any:
        return await eventually(check, timeout, what)

    # -- actions --------------------------------------------------------------------------------

    async def inject(self, node_id: str) -> None:
        await self.page.click(f'svg.flow.active .node[data-id="{node_id}"] .inject-button')

    async def enter_token(self, token: str) -> None:
        """Answer the token dialog the page opened."""
        await self.page.wait_for_selector("#token-dialog[open]")
        await self.page.fill("#token-input", token)
        await self.page.click('#token-dialog button[value="save"]')

    async def toasts(self) -> list[str]:
        return list(await self.page.eval_on_selector_all(
            "#toasts .toast", "els => els.map(e => e.textContent)"))

    async def open_node(self, node_id: str) -> dict[str, Any]:
        """Click a node (or config chip) and read the node panel."""
        found = self.page.locator(f'svg.flow.active .node[data-id="{node_id}"] .node-body, '
                                  f'.config-chip[data-id="{node_id}"]')
        await found.first.click()
        return await self.node_panel(node_id)

    async def node_panel(self, node_id: str) -> dict[str, Any]:
        await self.page.wait_for_selector("#info-panel.active .info-yaml")

        async def shown() -> dict[str, Any] | None:
            panel = await self.page.evaluate("""() => {
                const p = document.querySelector('#info-panel');
                const rows = Object.fromEntries([...p.querySelectorAll('.info-table tr')]
                    .map(r => [r.querySelector('th').textContent,
                               r.querySelector('td').textContent]));
                return {rows, file: p.querySelector('.info-file')?.textContent,
                        editor: p.querySelector('.info-editor')?.getAttribute('href'),
                        yaml: p.querySelector('.info-yaml')?.textContent,
                        errorLine: p.querySelector('.error-line')?.textContent ?? null};
            }""")
            return panel if panel["rows"].get("id") == node_id else None
        return dict(await self.wait_for(shown, f"the node panel of {node_id}"))

    # -- the debug sidebar ----------------------------------------------------------------------

    async def debug_messages(self, visible_only: bool = True) -> list[dict[str, Any]]:
        """The sidebar's messages: node id, the "node: name" link, the topic line, the text of
        the value and the level (error, warn, paused, note or "")."""
        return list(await self.page.evaluate("""(visibleOnly) =>
            [...document.querySelectorAll('#debug-messages .debug-msg')]
              .filter(m => !visibleOnly || !m.classList.contains('hidden'))
              .map(m => ({node: m.dataset.node ?? null,
                          name: m.querySelector('.msg-name')?.textContent ?? '',
                          topic: m.querySelector('.msg-topic')?.textContent ?? '',
                          text: m.querySelector('.msg-payload')?.textContent ?? '',
                          level: (m.className.match(/level-(\\w+)/) || [null, ''])[1]}))
        """, visible_only))

    async def debug_from(self, node_id: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until the sidebar shows ``count`` messages of ``node_id``; returns them."""
        async def arrived() -> list[dict[str, Any]] | None:
            found = [m for m in await self.debug_messages() if m["node"] == node_id]
            return found if len(found) >= count else None
        return list(await self.wait_for(arrived, f"{count} debug message(s) of {node_id}"))
