"""The flow view in Debian's Chromium against ``flowrun`` on the examples and on flows written
here: inject buttons and the token, the debug sidebar (tree, errors with the function's line,
filter, pause, clear), groups, disabled nodes and links to other flows, ``--watch`` reloads and
secrets. Every flow file is a copy in the test's folder: the tests change no tracked file."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Flowrun
from viewkit import FlowView

pytestmark = pytest.mark.timeout(120)

TOKEN = "page-token"
SECRET = "s3cret-in-the-env"

MAIN = """\
    flow: main
    description: two flows with a link between them
    include: [other.yaml]
    env:
      API_KEY: ${FLOWVIEW_SECRET:-unset}
    nodes:
      go:
        type: inject
        payload: {user: {name: Ada, langs: [py, js]}, n: 3}
        topic: greeting
        group: intake
        wires: [work]
      work:
        type: function
        group: intake
        code: |
          node.status({"fill": "green", "shape": "dot", "text": f"n={msg['payload']['n']}"})
          if msg["payload"].get("fail"):
              raise ValueError("asked to fail")
          return msg
        wires: [[shown, to-other]]
      shown:
        type: debug
        console: false
        group: intake
      to-other:
        type: link out
        links: [from-main]
      boom:
        type: inject
        payload: {fail: true, n: 0}
        wires: [work]
      resting:
        type: debug
        disabled: true
      fetch:
        type: http-request
        url: http://user:url-secret@127.0.0.1:9/x
        headers: {X-Api-Key: "${API_KEY}", X-Auth-Token: literal-secret}
        disabled: true
    """

OTHER = """\
    flow: other
    nodes:
      from-main:
        type: link in
        wires: [arrived]
      arrived:
        type: debug
        console: false
      own:
        type: inject
        payload: from the other flow
        wires: [arrived]
    """


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "other.yaml").write_text(textwrap.dedent(OTHER))
    main = folder / "main.yaml"
    main.write_text(textwrap.dedent(MAIN))
    return main


@pytest.fixture
def served(flowrun: Callable[..., Flowrun], flows: Path) -> Flowrun:
    return flowrun([flows], env={"FLOWENGINE_ADMIN_TOKEN": TOKEN, "FLOWVIEW_SECRET": SECRET})


@pytest.fixture
async def view(browser: Any, served: Flowrun) -> Any:
    page = await FlowView.open(browser, served.url, "main")
    yield page
    assert not page.errors, page.errors
    await page.close()


async def test_an_inject_click_asks_the_token_once_and_reaches_the_debug_node(
        browser: Any, flowrun: Callable[..., Flowrun], tmp_path: Path) -> None:
    hello = tmp_path / "hello.yaml"
    shutil.copy(REPO / "examples" / "flows" / "hello.yaml", hello)
    server = flowrun([hello], env={"FLOWENGINE_ADMIN_TOKEN": TOKEN})
    view = await FlowView.open(browser, server.url)
    try:
        assert await view.debug_messages() == []  # the start-up message came before the page
        await view.inject("hello")
        await view.enter_token("wrong")
        await view.wait_for(lambda: _any(view.toasts(), "a valid bearer token is required"),
                            "the refusal of a wrong token")
        assert await view.debug_messages() == []
        await view.inject("hello")
        await view.enter_token(TOKEN)
        [message] = await view.debug_from("show-greeting")
        await view.inject("hello")  # the token is kept: no dialog this time
        await view.debug_from("show-greeting", 2)
        assert not await view.page.is_visible("#token-dialog")
        counters = await view.wait_for(lambda: _contains(view.counters("greet"), "3 in"),
                                       "greet's counters")
    finally:
        await view.close()
    assert message["name"] == "node: show-greeting"
    assert message["topic"] == "msg.payload : string[13]"
    assert message["text"] == '"Hello, world!"'
    assert "3 out" in counters


async def test_a_read_only_server_refuses_inject_without_asking_a_token(
        browser: Any, flowrun: Callable[..., Flowrun], flows: Path) -> None:
    server = flowrun([flows])  # no token configured: the admin API is read-only
    view = await FlowView.open(browser, server.url, "main")
    try:
        await view.inject("go")
        await view.wait_for(lambda: _any(view.toasts(), "read-only"), "the read-only answer")
        assert not await view.page.is_visible("#token-dialog")
        assert await view.debug_messages() == []
    finally:
        await view.close()


async def test_debug_output_is_an_expandable_tree_with_time_node_and_topic(view: Any) -> None:
    await view.inject("go")
    await view.enter_token(TOKEN)
    [message] = await view.debug_from("shown")
    assert message["name"] == "node: shown"
    assert message["topic"] == "greeting : msg.payload : Object"
    assert message["text"].startswith('▸{ user: object, n: 3 }')
    date = await view.page.text_content("#debug-messages .debug-msg .msg-date")
    assert date and any(c.isdigit() for c in date)
    # Expand the message, then its "user" entry: keys and typed values appear.
    await view.page.click("#debug-messages .debug-msg .msg-top-level > .msg-row")
    await view.page.click("#debug-messages .msg-object-entry > .msg-row >> text=user")
    entries = await view.page.eval_on_selector_all(
        "#debug-messages .msg-object-entry .msg-object-entry > .msg-row",
        "els => els.map(e => e.textContent)")
    assert entries[:2] == ['name: "Ada"', "▸langs: array[2]array[2]"]
    assert await view.status("work") == "n=3"


async def test_an_error_names_the_node_and_the_function_s_line_in_the_file(
        view: Any, flows: Path) -> None:
    await view.inject("boom")
    await view.enter_token(TOKEN)
    [error] = await view.debug_from("work")
    lines = flows.read_text().splitlines()
    raise_line = next(i for i, line in enumerate(lines, 1) if "raise ValueError" in line)
    assert error["level"] == "error"
    assert error["name"] == "node: work"
    assert error["topic"] == "function : (error)"
    assert "ValueError: asked to fail (work, line 3)" in error["text"]
    assert f"line 3 (main.yaml:{raise_line})" in error["text"]
    await view.page.click("#debug-messages .msg-line")
    panel = await view.node_panel("work")
    assert panel["rows"]["error at"].startswith(f"code line 3: {flows}:{raise_line}")
    assert "raise ValueError" in panel["errorLine"]
    counters = await view.wait_for(lambda: _contains(view.counters("work"), "1 err"),
                                   "work's error count")
    assert counters.startswith("1 in · 0 out · 1 err")


async def test_the_sidebar_filters_by_flow_and_node_pauses_and_clears(view: Any) -> None:
    await view.inject("go")
    await view.enter_token(TOKEN)
    await view.debug_from("arrived")  # through the link, in the other flow
    await view.show("other")
    await view.inject("own")
    await view.debug_from("arrived", 2)
    assert len(await view.debug_messages()) == 3
    await view.page.select_option("#debug-filter", "flow")
    assert {m["node"] for m in await view.debug_messages()} == {"arrived"}
    await view.show("main")
    assert {m["node"] for m in await view.debug_messages()} == {"shown"}
    await view.page.select_option("#debug-filter", "node")
    await view.page.click('svg.flow.active .node[data-id="shown"] .node-body')
    assert [m["node"] for m in await view.debug_messages()] == ["shown"]
    await view.page.select_option("#debug-filter", "all")

    await view.page.click("#debug-pause")
    await view.inject("go")
    await view.wait_for(lambda: _any(_texts(view), "Paused: 2 messages dropped"),
                        "the paused marker counting")
    assert len([m for m in await view.debug_messages() if m["node"]]) == 3
    await view.page.click("#debug-pause")
    await view.inject("go")
    await view.debug_from("shown", 2)
    await view.page.click("#debug-clear")
    assert await view.debug_messages() == []


async def test_groups_disabled_nodes_and_links_to_other_flows(view: Any) -> None:
    drawn = {n["id"]: n for n in await view.drawn()}
    assert set(drawn) == {"go", "work", "shown", "to-other", "boom", "resting", "fetch"}
    [group] = await view.groups()
    assert group["name"] == "intake"
    for member in ("go", "work", "shown"):
        node = drawn[member]
        assert group["x"] < node["x"] and node["x"] + node["w"] < group["x"] + group["w"]
        assert group["y"] < node["y"] and node["y"] + node["h"] < group["y"] + group["h"]
    assert not _inside(drawn["boom"], group)
    assert drawn["resting"]["disabled"] and drawn["fetch"]["disabled"]
    assert not drawn["work"]["disabled"]
    opacity = await view.page.evaluate("""() => getComputedStyle(
        document.querySelector('.node[data-id="resting"]')).opacity""")
    assert float(opacity) < 0.6
    # The link out shows where it leads; a click there shows that flow and its link in.
    portal = 'svg.flow.active .node[data-id="to-other"] .portal text'
    assert (await view.page.text_content(portal)).strip() == "→ other"
    await view.page.click(portal)
    assert await view.current_flow() == "other"
    incoming = 'svg.flow.active .node[data-id="from-main"] .portal text'
    assert (await view.page.text_content(incoming)).strip() == "main →"
    assert "highlight" in str(await view.page.get_attribute('.node[data-id="from-main"]',
                                                          "class"))


async def test_a_watch_reload_shows_up_without_a_refresh(
        browser: Any, flowrun: Callable[..., Flowrun], flows: Path) -> None:
    server = flowrun([flows], env={"FLOWENGINE_ADMIN_TOKEN": TOKEN}, watch=True)
    view = await FlowView.open(browser, server.url, "main")
    try:
        assert await _layouts_computed(view) == 2  # both flows
        await view.page.reload()  # opened again: this browser kept the layouts
        await view.page.wait_for_selector("body[data-ready=true]", state="attached")
        assert await _layouts_computed(view) == 0
        await view.page.evaluate("() => { window.sameDocument = true; }")
        flows.write_text(flows.read_text().replace(
            "payload: {fail: true, n: 0}\n    wires: [work]\n",
            "payload: {fail: true, n: 0}\n    name: explode\n    wires: [work]\n"
            "  later:\n    type: debug\n    console: false\n"))
        await view.wait_for(lambda: view.page.is_visible('svg.flow.active .node[data-id="later"]'),
                            "the node added to the file")
        drawn = {n["id"]: n for n in await view.drawn()}
        assert drawn["boom"]["label"] == "explode"
        assert await view.page.evaluate("() => window.sameDocument") is True
        notes = await view.wait_for(lambda: _any(view.toasts(), "Flows reloaded"), "the note")
        assert "1 added" in notes and "1 changed" in notes
        assert await _layouts_computed(view) == 1  # the other flow did not change
        # Still live after the reload: the new drawing gets statuses and debug output.
        await view.inject("go")
        await view.enter_token(TOKEN)
        await view.debug_from("shown")
        await view.wait_for(lambda: _contains(view.status("work"), "n=3"), "work's status")
    finally:
        await view.close()


async def test_secrets_never_reach_the_page(view: Any, served: Flowrun) -> None:
    for node in ("fetch", "work", "go"):
        panel = await view.open_node(node)
        assert panel["file"].endswith("main.yaml:" + panel["file"].rsplit(":", 1)[1])
    fetch = await view.open_node("fetch")
    assert "X-Api-Key: ${API_KEY}" in fetch["yaml"]
    assert "X-Auth-Token: '********'" in fetch["yaml"]
    assert "url: http://user:********@127.0.0.1:9/x" in fetch["yaml"]
    bodies = [await r.text() for r in view.responses if r.request.resource_type in (
        "fetch", "xhr", "document")]
    bodies.append(await view.page.content())
    everything = "\n".join(bodies)
    assert "X-Api-Key" in everything  # the node's configuration was read...
    for secret in (SECRET, "url-secret", "literal-secret"):
        assert secret not in everything, secret  # ...without its secrets


# -- helpers --------------------------------------------------------------------------------------

async def _layouts_computed(view: FlowView) -> int:
    return int(await view.page.evaluate("() => window.flowview.layoutsComputed"))


async def _any(texts: Any, part: str) -> str | None:
    return next((t for t in await texts if part in t), None)


async def _contains(text: Any, part: str) -> str | None:
    value = await text
    return value if part in value else None


async def _texts(view: FlowView) -> list[str]:
    return [m["name"] for m in await view.debug_messages()]


def _inside(node: dict[str, Any], box: dict[str, Any]) -> bool:
    return (box["x"] <= node["x"] and node["x"] + node["w"] <= box["x"] + box["w"]
            and box["y"] <= node["y"] and node["y"] + node["h"] <= box["y"] + box["h"])
