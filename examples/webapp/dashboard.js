// The demo's dashboard: averaged peer metrics over time (plain SVG charts), sessions,
// recordings, Orion metadata and the host, updated live from the websocket /dashboard-events
// (protocol: flows/README.md).

import { $, connectSocket, formatBytes, formatRate, formatTime } from "./common.js";

const WINDOW_MS = 10 * 60 * 1000;  // the charts show the last 10 minutes
const ORION_REFRESH_MS = 15000;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = { rounds: [], sessions: [], recordings: [], orionEnabled: false, host: {} };

// Each chart: the round field it plots, how values are scaled and written.
const CHARTS = [
  { key: "frameRate", scale: 1, unit: "fps", digits: 1, floor: 10 },
  { key: "bitrate", scale: 1 / 1000, unit: "kbit/s", digits: 0, floor: 100 },
  { key: "height", scale: 1, unit: "px", digits: 0, floor: 100 },
  { key: "packetsLost", scale: 1, unit: "packets", digits: 1, floor: 1 },
];

// -- live updates ---------------------------------------------------------------------------

const handlers = {
  snapshot(msg) {
    state.rounds = msg.metrics || [];
    state.sessions = msg.sessions || [];
    state.recordings = msg.recordings || [];
    state.orionEnabled = Boolean(msg.orion?.enabled);
    if (msg.host) renderHost(msg.host);
    renderAll();
    loadOrion();
  },
  metrics(msg) {
    if (!msg.round) return;
    state.rounds = state.rounds.filter((r) => r.round !== msg.round.round);
    state.rounds.push(msg.round);
    renderMetrics();
  },
  sessions(msg) {
    state.sessions = msg.sessions || [];
    renderSessions();
  },
  recordings(msg) {
    state.recordings = msg.recordings || [];
    renderRecordings();
  },
};

connectSocket("/dashboard-events", {
  onOpen() {
    setConnection("open", "Live");
  },
  onMessage(text) {
    try {
      const msg = JSON.parse(text);
      handlers[msg.id]?.(msg);
    } catch (err) {
      console.warn("bad dashboard event", err);
    }
  },
  onClose(retryIn) {
    setConnection("closed", `Disconnected · retrying in ${Math.round(retryIn / 1000)} s`);
  },
});

function setConnection(name, text) {
  const el = $("#connection");
  el.dataset.state = name;
  el.textContent = text;
}

function renderAll() {
  renderMetrics();
  renderSessions();
  renderRecordings();
}

// -- metrics --------------------------------------------------------------------------------

function renderMetrics() {
  const newest = state.rounds.length ? Date.parse(state.rounds.at(-1).at) : Date.now();
  state.rounds = state.rounds
    .filter((r) => newest - Date.parse(r.at) <= WINDOW_MS)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const last = state.rounds.at(-1);
  if (last) {
    $("#last-round").textContent = `round ${last.round} at ${formatTime(last.at)}`;
    const avg = last.avg || {};
    setTile("#last-peers", last.peers, String(last.peers));
    setTile("#avg-frameRate", avg.frameRate, fixed(avg.frameRate, 1, " fps"));
    setTile("#avg-resolution", avg.height,
      avg.width == null ? "–" : `${Math.round(avg.width)}×${Math.round(avg.height)}`);
    setTile("#avg-bitrate", avg.bitrate, formatRate(avg.bitrate));
    setTile("#avg-packetsLost", avg.packetsLost, fixed(avg.packetsLost, 2, ""));
  }
  for (const chart of CHARTS) drawChart($(`#chart-${chart.key}`), chart, state.rounds);
}

function setTile(selector, value, text) {
  const el = $(selector);
  el.textContent = text;
  el.dataset.value = value == null ? "" : String(value);
}

function fixed(value, digits, suffix) {
  return value == null ? "–" : `${Number(value).toFixed(digits)}${suffix}`;
}

/** A line chart of the 1-minute averages (line) and each round's mean (dots). */
function drawChart(svg, { key, scale, unit, digits, floor }, rounds) {
  const box = { left: 60, right: 590, top: 12, bottom: 172 };
  const points = rounds
    .map((r) => ({ t: Date.parse(r.at), avg: r.avg?.[key], value: r[key] }))
    .filter((p) => Number.isFinite(p.t));
  svg.replaceChildren();
  const avgPoints = points.filter((p) => p.avg != null);
  svg.dataset.points = String(avgPoints.length);
  if (!points.length) {
    svg.setAttribute("aria-label", `No ${unit} figures yet`);
    add(svg, "text", { x: 300, y: 100, "text-anchor": "middle", class: "chart-empty" },
      "waiting for figures");
    return;
  }
  const values = points.flatMap((p) => [p.avg, p.value]).filter((v) => v != null).map((v) => v * scale);
  // The y axis starts at 0 and ends at a round number; `floor` keeps a flat line of zeros
  // from filling the whole chart.
  const { max: yMax, steps } = niceAxis(Math.max(floor, ...values));
  let t0 = points[0].t;
  let t1 = points.at(-1).t;
  if (t1 - t0 < 60000) t0 = t1 - 60000;  // at least one minute wide
  const x = (t) => box.left + ((t - t0) / (t1 - t0)) * (box.right - box.left);
  const y = (v) => box.bottom - ((v * scale) / yMax) * (box.bottom - box.top);

  for (let i = 0; i <= steps; i += 1) {  // horizontal grid with values
    const value = (yMax * i) / steps;
    const gy = box.bottom - (i / steps) * (box.bottom - box.top);
    add(svg, "line", { x1: box.left, x2: box.right, y1: gy, y2: gy, class: "grid" });
    add(svg, "text", { x: box.left - 6, y: gy + 4, "text-anchor": "end", class: "tick" },
      String(Number(value.toFixed(2))));
  }
  add(svg, "text", { x: box.left, y: 192, class: "tick" }, formatTime(new Date(t0).toISOString()));
  add(svg, "text", { x: box.right, y: 192, "text-anchor": "end", class: "tick" },
    formatTime(new Date(t1).toISOString()));

  for (const p of points.filter((q) => q.value != null)) {
    add(svg, "circle", { cx: x(p.t), cy: y(p.value), r: 3, class: "dot-round" });
  }
  if (avgPoints.length) {
    const d = avgPoints.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.avg).toFixed(1)}`).join(" ");
    add(svg, "path", { d, class: "line-avg" });
    const last = avgPoints.at(-1);
    add(svg, "circle", { cx: x(last.t), cy: y(last.avg), r: 4, class: "dot-avg" });
    svg.setAttribute("aria-label", `1-minute average: ${(last.avg * scale).toFixed(digits)} ${unit} `
      + `at ${formatTime(new Date(last.t).toISOString())}, ${avgPoints.length} rounds shown`);
  }
}

/** The top of a y axis for values up to `value`: 4 to 6 gridline steps of 1, 2, 2.5 or 5 × 10^k. */
function niceAxis(value) {
  const raw = value / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const steps = Math.max(4, Math.ceil(value / step - 1e-9));
  return { max: steps * step, steps };
}

function add(parent, tag, attributes, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text !== undefined) el.textContent = text;
  parent.append(el);
  return el;
}

// -- lists ----------------------------------------------------------------------------------

function renderSessions() {
  fillTable("#sessions", state.sessions, (s) => [
    (s.name ? `${s.name} · ` : "") + s.sessionId.slice(0, 8),
    s.kind + (s.url ? ` (${s.url})` : "") + (s.ended ? " · ended" : ""), String(s.viewers ?? 0),
    s.recording ? "yes" : "no", formatTime(s.startedAt),
  ], (row, s) => { row.dataset.sessionId = s.sessionId; }, 1);
  $("#no-sessions").hidden = state.sessions.length > 0;
}

function renderRecordings() {
  fillTable("#recordings", state.recordings, (r) => [r.file, formatBytes(r.size), formatTime(r.stoppedAt)],
    (row, r) => {
      row.dataset.file = r.file;
      const link = document.createElement("a");
      link.href = r.url || `/recordings/${encodeURIComponent(r.file)}`;
      link.textContent = r.file;
      row.firstElementChild.replaceChildren(link);
    }, 0);
  $("#no-recordings").hidden = state.recordings.length > 0;
}

/** Rows of `items` into the table's body; the column `long` (a URL or a file name) may wrap
 * anywhere. */
function fillTable(selector, items, cells, decorate, long) {
  const body = $(`${selector} tbody`);
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const [index, text] of cells(item).entries()) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (index === long) cell.className = "long";
      row.append(cell);
    }
    decorate(row, item);
    body.append(row);
  }
}

// -- Orion and host -------------------------------------------------------------------------

let orionTimer = null;

async function loadOrion() {
  clearTimeout(orionTimer);
  const box = $("#orion");
  try {
    const response = await fetch("/api/orion");
    const orion = await response.json();
    renderOrion(box, orion);
    if (orion.enabled) orionTimer = setTimeout(loadOrion, ORION_REFRESH_MS);
  } catch (err) {
    box.replaceChildren(paragraph(`Orion metadata unavailable: ${err.message}`, "error-text"));
  }
}

function renderOrion(box, orion) {
  if (!orion.enabled) {
    box.replaceChildren(paragraph("Not configured: set ORION_URL (e.g. http://orion:1026) to "
      + "publish the metrics as NGSI v2 entity updates.", "empty"));
    return;
  }
  const facts = document.createElement("dl");
  facts.className = "facts";
  const version = orion.version?.orion?.version || (orion.version ? JSON.stringify(orion.version) : "–");
  for (const [name, value] of [["URL", orion.url], ["Version", version], ["Entity", orion.entityId]]) {
    addFact(facts, name, value);
  }
  const parts = [facts];
  if (orion.error) parts.push(paragraph(`Orion did not answer: ${orion.error}`, "error-text"));

  const entities = Array.isArray(orion.entities) ? orion.entities : [];
  parts.push(heading(`Entities (${entities.length})`));
  const table = document.createElement("table");
  table.className = "list";
  table.id = "orion-entities";
  table.innerHTML = '<thead><tr><th scope="col">Id</th><th scope="col">Type</th>'
    + '<th scope="col">Attributes</th></tr></thead><tbody></tbody>';
  for (const entity of entities) {
    const attributes = Object.entries(entity)
      .filter(([name]) => name !== "id" && name !== "type")
      .map(([name, attr]) => `${name}=${formatAttribute(attr)}`)
      .join(", ");
    const row = document.createElement("tr");
    for (const text of [entity.id, entity.type, attributes]) {
      const cell = document.createElement("td");
      cell.textContent = text ?? "";
      row.append(cell);
    }
    table.tBodies[0].append(row);
  }
  parts.push(table);

  const subscriptions = Array.isArray(orion.subscriptions) ? orion.subscriptions : [];
  parts.push(heading(`Subscriptions (${subscriptions.length})`));
  const list = document.createElement("ul");
  list.id = "orion-subscriptions";
  for (const sub of subscriptions) {
    const item = document.createElement("li");
    const target = sub.notification?.http?.url || sub.notification?.httpCustom?.url || "";
    item.textContent = `${sub.description || sub.id} · ${sub.status || ""} ${target ? `→ ${target}` : ""}`;
    list.append(item);
  }
  parts.push(list);
  box.replaceChildren(...parts);
}

function formatAttribute(attr) {
  const value = attr && typeof attr === "object" && "value" in attr ? attr.value : attr;
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  return typeof value === "string" ? value : JSON.stringify(value);
}

function renderHost(update) {
  // The snapshot carries the host's addresses, /api/host also the services: keep both.
  for (const [name, value] of Object.entries(update)) {
    if (value !== undefined && value !== null) state.host[name] = value;
  }
  const host = state.host;
  const facts = $("#host");
  facts.replaceChildren();
  const entries = [
    ["Host name", host.hostname], ["Addresses", [...(host.ipv4 || []), ...(host.ipv6 || [])].join(", ")],
    ["Web app", host.url], ["Listening on", listening(host.listening)],
    ["Media server", host.mediaServer], ["Database", host.database],
    ["TURN", host.turn || "not configured"], ["Orion", host.orion || "not configured"],
  ];
  for (const [name, value] of entries) addFact(facts, name, value);
}

/** "127.0.0.1:1880" -> "127.0.0.1:1880 (this machine only)"; every interface says so. */
function listening(address) {
  if (!address) return undefined;
  const host = address.slice(0, address.lastIndexOf(":"));
  if (["0.0.0.0", "::", ""].includes(host)) return `${address} (every interface)`;
  if (host === "localhost" || host === "::1" || host.startsWith("127.")) {
    return `${address} (this machine only)`;
  }
  return address;
}

function addFact(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = typeof value === "string" ? value : (value == null ? "–" : JSON.stringify(value));
  list.append(dt, dd);
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

function heading(text) {
  const h = document.createElement("h3");
  h.textContent = text;
  return h;
}

// The snapshot may come without host facts: ask the HTTP API.
fetch("/api/host").then((r) => (r.ok ? r.json() : null)).then((host) => host && renderHost(host))
  .catch(() => {});
