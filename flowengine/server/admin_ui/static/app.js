// The flow view: loads the flows (GET view, GET nodes), draws them, and keeps them live from
// the /admin/events stream (status, counters, debug output, errors, reloads).

import { ApiError, getJSON, inject, openEvents, setToken, token } from "./api.js";
import { DebugSidebar } from "./debug.js";
import { FlowCanvas } from "./graph.js";
import { NodeInfo } from "./info.js";

const $ = (id) => document.getElementById(id);
const live = new Map(); // node id -> {status, counters}: the last known, for redraws
const updated = new Map(); // "id status" / "id counters" -> when an event last set it
let seq = 0; // counts live updates, to tell them from an older snapshot of GET nodes

function toast(text, kind = "info") {
  const note = document.createElement("div");
  note.className = `toast ${kind}`;
  note.textContent = text;
  $("toasts").append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 3000);
}

const canvas = new FlowCanvas($("canvas"), $("config-bar"), {
  onSelect: (id) => select(id),
  onInject: (id) => fire(id),
  onNavigate: (flow, ids) => {
    showFlow(flow);
    ids.forEach((id) => canvas.reveal(id));
  },
});
const info = new NodeInfo($("info-panel"), (id) => canvas.index?.get(id));
const debug = new DebugSidebar($("debug-messages"),
  { pause: $("debug-pause"), filter: $("debug-filter"), clear: $("debug-clear") }, {
    node: (id) => canvas.index?.get(id),
    currentFlow: () => canvas.current,
    selectedNode: () => canvas.selected,
    reveal: (id) => {
      canvas.reveal(id);
      showFlow(canvas.current);
    },
    hover: (id, on) => canvas.element(id)?.group.classList.toggle("hover", on),
    showSource: (id, field, line) => select(id, field, line),
  });

// -- tabs and selection ---------------------------------------------------------------------

function buildTabs(flows) {
  const tabs = $("tabs");
  tabs.replaceChildren(...flows.map((flow) => {
    const tab = document.createElement("button");
    tab.type = "button";
    tab.className = "tab";
    tab.setAttribute("role", "tab");
    tab.dataset.flow = flow.name;
    tab.textContent = flow.name;
    tab.title = flow.description || flow.name;
    tab.addEventListener("click", () => showFlow(flow.name));
    return tab;
  }));
}

function showFlow(name) {
  if (!canvas.show(name)) return;
  for (const tab of $("tabs").children) {
    const active = tab.dataset.flow === name;
    tab.classList.toggle("active", active);
    tab.setAttribute("aria-selected", String(active));
  }
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  debug.refilter();
}

function showPanel(name) {
  for (const tab of document.querySelectorAll(".sidebar-tab")) tab.classList.toggle("active", tab.dataset.panel === name);
  for (const panel of document.querySelectorAll(".panel")) panel.classList.toggle("active", panel.id === `${name}-panel`);
}

async function select(id, field = null, line = null) {
  const node = canvas.index?.get(id);
  if (node) showFlow(node.flow);
  canvas.select(id);
  debug.refilter();
  // Filtering the debug output by the selected node: keep showing it.
  if (!(field === null && $("debug-filter").value === "node" && $("debug-panel").classList.contains("active"))) {
    showPanel("info");
  }
  await info.show(id, field, line);
  info.update(id, live.get(id) || {});
}

// -- inject and the token -------------------------------------------------------------------

function askToken() {
  const dialog = $("token-dialog");
  const input = $("token-input");
  input.value = token();
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "save") setToken(input.value.trim());
      if (dialog.returnValue === "clear") setToken("");
      if (dialog.returnValue === "save") presentToken();
      resolve(dialog.returnValue === "save" && Boolean(input.value.trim()));
    }, { once: true });
  });
}

async function fire(id, asked = false) {
  const name = canvas.index?.get(id)?.name || id;
  try {
    await inject(id);
    toast(`Injected: ${name}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !asked) {
      if (await askToken()) await fire(id, true);
      return;
    }
    toast(`Inject ${name}: ${error.message}`, "error");
  }
}

$("token-button").addEventListener("click", askToken);

// -- zoom -----------------------------------------------------------------------------------

$("zoom").addEventListener("click", (event) => {
  const action = event.target.dataset.zoom;
  if (action === "in") canvas.setZoom(canvas.zoom * 1.25);
  if (action === "out") canvas.setZoom(canvas.zoom / 1.25);
  if (action === "reset") canvas.setZoom(1);
  if (action === "fit") canvas.fit();
});
$("canvas").addEventListener("wheel", (event) => {
  if (!event.ctrlKey) return;
  event.preventDefault();
  canvas.setZoom(canvas.zoom * (event.deltaY < 0 ? 1.1 : 1 / 1.1));
}, { passive: false });
$("canvas").addEventListener("click", () => canvas.select(null));
for (const tab of document.querySelectorAll(".sidebar-tab")) tab.addEventListener("click", () => showPanel(tab.dataset.panel));

// -- loading and live updates ---------------------------------------------------------------

function apply(id, change) {
  live.set(id, { ...(live.get(id) || {}), ...change });
  for (const field of Object.keys(change)) updated.set(`${id} ${field}`, ++seq);
  if ("status" in change) canvas.setStatus(id, change.status);
  if ("counters" in change) canvas.setCounters(id, change.counters);
  info.update(id, change);
}

/** Load (or reload) the flows and the nodes' state, and draw them. */
async function load() {
  const before = seq;
  const [view, nodes] = await Promise.all([getJSON("view"), getJSON("nodes")]);
  performance.mark("flowview:fetched");
  buildTabs(view.flows);
  await canvas.render(view, decodeURIComponent(location.hash.slice(1)));
  showFlow(canvas.current);
  // What the events said since the request is newer than the snapshot.
  for (const node of nodes) {
    const state = { ...(live.get(node.id) || {}) };
    for (const field of ["status", "counters"]) {
      if ((updated.get(`${node.id} ${field}`) || 0) <= before) state[field] = node[field];
    }
    live.set(node.id, state);
  }
  for (const [id, state] of live) {
    canvas.setStatus(id, state.status);
    canvas.setCounters(id, state.counters);
  }
  return view;
}

let loading = null;
/** ``load``, asking for the admin token when reading needs it (and one was not given). */
async function loadAsked() {
  try {
    return await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && await askToken()) return loadAsked();
    throw error;
  }
}

function reload(summary) {
  loading = (loading || Promise.resolve()).then(loadAsked).then(() => {
    if (summary) {
      const parts = ["added", "changed", "removed"].filter((k) => summary[k]?.length)
        .map((k) => `${summary[k].length} ${k}`);
      toast(`Flows reloaded${parts.length ? `: ${parts.join(", ")}` : ""}`);
      debug.note(`flows reloaded${parts.length ? `: ${parts.join(", ")}` : ""}`);
    }
    if (canvas.selected && canvas.index.get(canvas.selected)) {
      canvas.select(canvas.selected);
      info.show(canvas.selected);
    }
  }).catch((error) => toast(`Could not load the flows: ${error.message}`, "error"));
  return loading;
}

const handlers = {
  status: (data) => apply(data.node, { status: data.status }),
  counters: (data) => Object.entries(data.nodes).forEach(([id, c]) => apply(id, { counters: c })),
  debug: (data) => debug.debug(data),
  error: (data) => debug.error(data),
  log: (data) => data.level === "WARNING" && debug.warning(data),
  reload: (data) => reload(data),
  dropped: (data) => debug.note(`${data.count} events dropped (the page read too slowly)`),
};

let opened = false;
const presentToken = openEvents((kind, data) => handlers[kind]?.(data), (state) => {
  const connection = $("connection");
  connection.textContent = state === "open" ? "connected" : "disconnected";
  connection.classList.toggle("open", state === "open");
  // After a drop (flowrun restarted?) the flows may be others: load them again.
  if (state === "open" && opened) reload(null);
  if (state === "open") opened = true;
});

window.flowview = {
  get layoutsComputed() {
    return canvas.computed;
  },
  ready: reload(null).then(() => {
    // Milliseconds since the navigation started: the first flow drawn, every flow drawn.
    window.flowview.firstMs = canvas.firstDrawn;
    window.flowview.renderMs = performance.now();
    window.flowview.fetchedMs = performance.getEntriesByName("flowview:fetched")[0]?.startTime;
    window.flowview.drawMs = canvas.drawMs;
    document.body.dataset.ready = "true";
  }),
};
