// The flows drawn as Node-RED's editor draws them: one SVG per flow, nodes laid out left to
// right by ELK's layered algorithm (elkjs, static/vendor), wires as Node-RED's curves.
//
// Node geometry follows Node-RED's editor: a 30 px high body (15 px per output beyond two),
// at least 100 px wide, the type's icon in a 30 px band, 10 px ports; the status dot and text
// under the body. Above the body: the node's counters (in, out, errors, handler time).

const SVG = "http://www.w3.org/2000/svg";
const NODE_HEIGHT = 30;
const MIN_WIDTH = 100;
const PORT = 10;
const ICON = 30;
const TOP = 12; // the counters line above a node's body
const BOTTOM = 16; // the status line under it
const INJECT_BUTTON = 26; // the inject button left of an inject node
const JUNCTION = 10;
const PORTAL_GAP = 16; // the dashed stub between a node and a link to another flow
const LABEL_FONT = '14px "Helvetica Neue", Arial, Helvetica, sans-serif';
const SMALL_FONT = '11px "Helvetica Neue", Arial, Helvetica, sans-serif';
// Node-RED draws these with their icon on the right ("align: right").
const ICON_RIGHT = new Set(["debug", "link-out", "http-response", "websocket-out"]);
const STATUS_COLORS = {
  red: "#c00", green: "#5a8", yellow: "#F9DF31", blue: "#53A3F3", grey: "#d3d3d3", gray: "#d3d3d3",
};
const ROOT_OPTIONS = {
  "elk.algorithm": "layered",
  "elk.direction": "RIGHT",
  "elk.hierarchyHandling": "INCLUDE_CHILDREN",
  "elk.layered.spacing.nodeNodeBetweenLayers": "36",
  "elk.layered.spacing.edgeNodeBetweenLayers": "12",
  "elk.spacing.nodeNode": "10",
  "elk.spacing.componentComponent": "28",
  "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
  "elk.aspectRatio": "0.6", // unconnected parts of a flow stack downwards, as on a Node-RED tab
  "elk.padding": "[top=16,left=24,bottom=24,right=24]",
};
const GROUP_OPTIONS = { "elk.padding": "[top=30,left=14,bottom=6,right=14]" };

const norm = (type) => type.trim().replace(/ /g, "-");

const measureContext = document.createElement("canvas").getContext("2d");
function textWidth(text, font = LABEL_FONT) {
  measureContext.font = font;
  return measureContext.measureText(text).width;
}

function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (parent) parent.append(node);
  return node;
}

/** Where every node is, and which nodes of other flows each one links to or from. */
class FlowIndex {
  constructor(view) {
    this.flows = view.flows;
    this.nodes = new Map();
    for (const flow of view.flows) {
      for (const node of flow.nodes) this.nodes.set(node.id, { ...node, flow: flow.name, file: flow.file });
    }
    this.incoming = new Map(); // link in id -> [source ids]
    for (const node of this.nodes.values()) {
      for (const target of node.links) {
        if (!this.incoming.has(target)) this.incoming.set(target, []);
        this.incoming.get(target).push(node.id);
      }
    }
  }

  get(id) {
    return this.nodes.get(id);
  }

  /** Targets of node ``id`` (wires and links) in other flows, by flow name. */
  outgoingPortals(id) {
    const node = this.nodes.get(id);
    const targets = [...node.wires.flat(), ...node.links];
    return byFlow(targets.map((id) => this.nodes.get(id)).filter((t) => t && t.flow !== node.flow));
  }

  /** Sources in other flows that link or wire into node ``id``, by flow name. */
  incomingPortals(id) {
    const node = this.nodes.get(id);
    const sources = [...(this.incoming.get(node.id) || [])];
    for (const other of this.nodes.values()) {
      if (other.flow !== node.flow && other.wires.flat().includes(node.id)) sources.push(other.id);
    }
    return byFlow(sources.map((id) => this.nodes.get(id)).filter((s) => s && s.flow !== node.flow));
  }
}

function byFlow(nodes) {
  const flows = new Map();
  for (const node of nodes) {
    if (!flows.has(node.flow)) flows.set(node.flow, []);
    flows.get(node.flow).push(node);
  }
  return flows;
}

function portalText(flowName, direction) {
  return direction === "out" ? `→ ${flowName}` : `${flowName} →`;
}

/** A node's sizes: its body (w × h) and the box ELK places (body, labels, buttons). */
function geometry(node, index) {
  const type = norm(node.type);
  if (type === "junction") {
    return { w: JUNCTION, h: JUNCTION, left: 0, right: 0, boxW: JUNCTION, boxH: TOP + JUNCTION + BOTTOM, out: [], in: [] };
  }
  const label = textWidth(node.name);
  const w = Math.max(MIN_WIDTH, 20 * Math.ceil((label + 50 + (node.inputs ? 7 : 0)) / 20));
  const h = Math.max(NODE_HEIGHT, node.outputs * 15);
  const out = [...index.outgoingPortals(node.id).keys()];
  const inc = [...index.incomingPortals(node.id).keys()];
  const portalWidth = (names, direction) => names.length
    ? PORTAL_GAP + Math.max(...names.map((n) => textWidth(portalText(n, direction), SMALL_FONT) + 12)) : 0;
  const left = (type === "inject" ? INJECT_BUTTON : 0) + portalWidth(inc, "in");
  const right = portalWidth(out, "out");
  const portals = Math.max(out.length, inc.length);
  return { w, h, left, right, out, in: inc, boxW: left + w + right, boxH: TOP + Math.max(h, portals * 16) + BOTTOM };
}

/** The y of output ``i`` of ``n`` on a body of height ``h`` (Node-RED's port spacing). */
function portY(h, i, n) {
  return h / 2 - ((n - 1) / 2) * 13 + 13 * i;
}

/** Node-RED's wire: a bezier leaving and entering horizontally; backwards it loops round. */
function wirePath(x1, y1, x2, y2) {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const delta = Math.hypot(dx, dy);
  if (dx > 0) {
    const scale = delta < MIN_WIDTH ? 0.75 - 0.75 * ((MIN_WIDTH - delta) / MIN_WIDTH) : 0.75;
    const c = MIN_WIDTH * scale;
    return `M ${x1} ${y1} C ${x1 + c} ${y1} ${x2 - c} ${y2} ${x2} ${y2}`;
  }
  const c = MIN_WIDTH * 0.6;
  const midY = y1 + dy / 2 + (Math.abs(dy) < NODE_HEIGHT * 2 ? NODE_HEIGHT * 1.5 : 0);
  return `M ${x1} ${y1} C ${x1 + c} ${y1} ${x1 + c} ${midY} ${x1 + dx / 2} ${midY} `
    + `S ${x2 - c} ${y2} ${x2} ${y2}`;
}

/** The ELK graph of one flow: nodes (in their groups) with fixed ports, wires and links. */
function elkGraph(flow, index, geometries) {
  const root = { id: "root", layoutOptions: ROOT_OPTIONS, children: [], edges: [] };
  const groups = new Map();
  const local = new Set(flow.nodes.filter((n) => !n.config).map((n) => n.id));
  for (const node of flow.nodes) {
    if (node.config) continue;
    const g = geometries.get(node.id);
    const ports = [];
    const port = (id, x, y, side) => ports.push({
      id, x: x - PORT / 2, y: y - PORT / 2, width: PORT, height: PORT, layoutOptions: { "elk.port.side": side },
    });
    if (node.inputs) port(`${node.id}:in`, g.left, TOP + g.h / 2, "WEST");
    for (let i = 0; i < node.outputs; i++) port(`${node.id}:o${i}`, g.left + g.w, TOP + portY(g.h, i, node.outputs), "EAST");
    if (node.links.some((t) => local.has(t))) port(`${node.id}:link`, g.left + g.w, TOP + g.h / 2, "EAST");
    const child = { id: node.id, width: g.boxW, height: g.boxH, ports, layoutOptions: { "elk.portConstraints": "FIXED_POS" } };
    if (node.group) {
      if (!groups.has(node.group)) {
        const group = { id: `group:${node.group}`, layoutOptions: GROUP_OPTIONS, children: [] };
        groups.set(node.group, group);
        root.children.push(group);
      }
      groups.get(node.group).children.push(child);
    } else {
      root.children.push(child);
    }
  }
  let n = 0;
  const edge = (source, target) => root.edges.push({ id: `e${n++}`, sources: [source], targets: [target] });
  for (const node of flow.nodes) {
    node.wires.forEach((targets, i) => {
      for (const t of targets) if (local.has(t) && index.get(t).inputs) edge(`${node.id}:o${i}`, `${t}:in`);
    });
    for (const t of node.links) if (local.has(t)) edge(`${node.id}:link`, `${t}:in`);
  }
  return root;
}

/** What a layout gives the drawing: its size and every box's absolute position (ELK's are
 * relative to their parent), as [id, x, y, width, height]. */
function layoutOf(laid) {
  const boxes = [];
  const walk = (parent, ox, oy) => {
    for (const child of parent.children || []) {
      const x = ox + child.x;
      const y = oy + child.y;
      boxes.push([child.id, x, y, child.width, child.height]);
      walk(child, x, y);
    }
  };
  walk(laid, 0, 0);
  return { width: laid.width, height: laid.height, boxes };
}

const LAYOUTS_KEPT = 64; // flows whose layout this browser keeps (localStorage)
const LAYOUT_INDEX = "flowview.layouts";

/**
 * Layouts already computed, by the ELK graph they were computed for (which holds every size,
 * port, wire and option): a flow that did not change is not laid out again, so a reload
 * redraws it where it was, and a page opened again in this browser draws without waiting for
 * ELK. Kept in memory and in localStorage (the last LAYOUTS_KEPT).
 */
class LayoutCache {
  constructor() {
    this.memory = new Map();
    try {
      this.storage = window.localStorage;
    } catch {
      this.storage = null; // storage refused (privacy settings): memory only
    }
  }

  key(graph) {
    const text = JSON.stringify(graph);
    let hash = 0x811c9dc5; // FNV-1a
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    return `flowview.layout.${(hash >>> 0).toString(16)}.${text.length}`;
  }

  get(key) {
    if (this.memory.has(key)) return this.memory.get(key);
    try {
      const stored = JSON.parse(this.storage?.getItem(key) || "null");
      if (stored) this.memory.set(key, stored);
      return stored;
    } catch {
      return null;
    }
  }

  set(key, layout) {
    this.memory.set(key, layout);
    if (!this.storage) return;
    try {
      const kept = JSON.parse(this.storage.getItem(LAYOUT_INDEX) || "[]").filter((k) => k !== key);
      kept.push(key);
      for (const old of kept.splice(0, Math.max(0, kept.length - LAYOUTS_KEPT))) this.storage.removeItem(old);
      this.storage.setItem(key, JSON.stringify(layout));
      this.storage.setItem(LAYOUT_INDEX, JSON.stringify(kept));
    } catch {
      // full or refused: the memory copy still serves this page
    }
  }
}

/** One flow's drawing: its SVG, and the elements live updates change, by node id. */
class FlowDrawing {
  constructor(flow, index, layout, geometries, handlers) {
    this.flow = flow;
    this.elements = new Map();
    this.width = Math.ceil(layout.width);
    this.height = Math.ceil(layout.height);
    this.svg = svg("svg", { class: "flow", "data-flow": flow.name, viewBox: `0 0 ${this.width} ${this.height}` });
    this.bar = document.createElement("div");
    this.bar.className = "config-nodes";
    for (const node of flow.nodes.filter((n) => n.config)) {
      const chip = drawConfigChip(node, handlers);
      this.bar.append(chip.group);
      this.elements.set(node.id, chip);
    }
    const boxes = new Map(layout.boxes.map(([id, x, y, width, height]) => [id, { x, y, width, height }]));
    const groupLayer = svg("g", { class: "groups" }, this.svg);
    const wireLayer = svg("g", { class: "wires" }, this.svg);
    const nodeLayer = svg("g", { class: "nodes" }, this.svg);
    for (const [id, box] of boxes) {
      if (!id.startsWith("group:")) continue;
      const g = svg("g", { class: "group", transform: `translate(${box.x},${box.y})` }, groupLayer);
      svg("rect", { width: box.width, height: box.height, rx: 4 }, g);
      svg("text", { x: 8, y: 18 }, g).textContent = id.slice("group:".length);
    }
    const body = (id) => {
      const box = boxes.get(id);
      const g = geometries.get(id);
      return { x: box.x + g.left, y: box.y + TOP, g };
    };
    for (const node of flow.nodes) {
      if (node.config || !boxes.has(node.id)) continue;
      const from = body(node.id);
      const disabled = node.disabled;
      node.wires.forEach((targets, i) => {
        for (const t of targets) {
          if (!boxes.has(t)) continue;
          const to = body(t);
          const x1 = from.x + from.g.w;
          const y1 = from.y + portY(from.g.h, i, node.outputs);
          const cls = "wire" + (disabled || index.get(t).disabled ? " disabled" : "");
          svg("path", { class: cls, d: wirePath(x1, y1, to.x, to.y + to.g.h / 2), "data-from": node.id, "data-to": t }, wireLayer);
        }
      });
      for (const t of node.links) {
        if (!boxes.has(t)) continue;
        const to = body(t);
        svg("path", {
          class: "wire link", d: wirePath(from.x + from.g.w, from.y + from.g.h / 2, to.x, to.y + to.g.h / 2),
          "data-from": node.id, "data-to": t,
        }, wireLayer);
      }
      this.elements.set(node.id, drawNode(node, from, index, nodeLayer, handlers));
    }
  }
}

/** A config node: a chip above the flow (Node-RED lists them in a sidebar). */
function drawConfigChip(node, handlers) {
  const chip = document.createElement("button");
  chip.type = "button";
  chip.className = "config-chip node" + (node.disabled ? " disabled" : "");
  chip.dataset.id = node.id;
  chip.dataset.type = node.type;
  chip.title = `config node ${node.id} (${node.type})`;
  const part = (className, text) => {
    const span = document.createElement("span");
    span.className = className;
    if (text !== undefined) span.textContent = text;
    chip.append(span);
    return span;
  };
  part("swatch").style.background = node.color;
  part("chip-name", node.name);
  part("chip-type", node.type);
  const status = part("chip-status");
  status.hidden = true;
  const counters = part("node-counters");
  chip.addEventListener("click", () => handlers.onSelect(node.id));
  return { group: chip, status, counters, chip: true };
}

function drawNode(node, at, index, layer, handlers) {
  const { g } = at;
  const type = norm(node.type);
  const group = svg("g", {
    class: `node type-${type}` + (node.disabled ? " disabled" : ""), transform: `translate(${at.x},${at.y})`,
    "data-id": node.id, "data-type": node.type, tabindex: "0",
  }, layer);
  const title = svg("title", {}, group);
  title.textContent = `${node.name} (${node.type}${node.name !== node.id ? `, ${node.id}` : ""})`;
  group.addEventListener("click", (event) => {
    event.stopPropagation();
    handlers.onSelect(node.id);
  });
  if (type === "junction") {
    svg("rect", { class: "node-body", width: JUNCTION, height: JUNCTION, rx: 3, fill: node.color }, group);
    return { group, status: null, counters: svg("text", { class: "node-counters", x: 0, y: -4 }, group) };
  }
  if (type === "inject" && !node.disabled) {
    const button = svg("g", { class: "inject-button", transform: "translate(-25,2)", role: "button" }, group);
    svg("title", {}, button).textContent = `inject ${node.name}`;
    svg("rect", { class: "button-outer", width: 32, height: 26, rx: 5 }, button);
    svg("rect", { class: "button-inner", x: 5, y: 3, width: 18, height: 20, rx: 5, fill: node.color }, button);
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      handlers.onInject(node.id);
    });
  }
  svg("rect", { class: "node-body", width: g.w, height: g.h, rx: 5, ry: 5, fill: node.color }, group);
  const right = ICON_RIGHT.has(type);
  if (node.icon) {
    const iconX = right ? g.w - ICON : 0;
    svg("path", { class: "node-icon-shade", d: right
      ? `M ${iconX} 1 l ${ICON - 5} 0 a 4 4 0 0 1 4 4 l 0 ${g.h - 10} a 4 4 0 0 1 -4 4 l ${-(ICON - 5)} 0 z`
      : `M ${ICON} 1 l ${-(ICON - 5)} 0 a 4 4 0 0 0 -4 4 l 0 ${g.h - 10} a 4 4 0 0 0 4 4 l ${ICON - 5} 0 z` }, group);
    svg("path", { class: "node-icon-line", d: `M ${right ? iconX : ICON} 1 l 0 ${g.h - 2}` }, group);
    svg("image", { href: `ui/icons/${node.icon}`, x: iconX, y: (g.h - ICON) / 2, width: ICON, height: ICON }, group);
  }
  const label = svg("text", {
    class: "node-label", x: right ? g.w - ICON - 8 : ICON + 8, y: g.h / 2, "text-anchor": right ? "end" : "start",
    "dominant-baseline": "central",
  }, group);
  label.textContent = node.name;
  if (node.inputs) svg("rect", { class: "port", x: -PORT / 2, y: g.h / 2 - PORT / 2, width: PORT, height: PORT, rx: 3 }, group);
  for (let i = 0; i < node.outputs; i++) {
    svg("rect", { class: "port", x: g.w - PORT / 2, y: portY(g.h, i, node.outputs) - PORT / 2, width: PORT, height: PORT, rx: 3 }, group);
  }
  drawPortals(node, g, index, group, handlers);
  const status = svg("g", { class: "node-status", transform: `translate(0,${g.h + 3})`, visibility: "hidden" }, group);
  svg("rect", { class: "status-dot", x: 6, y: 1, width: 9, height: 9, rx: 2, ry: 2 }, status);
  svg("text", { class: "status-text", x: 20, y: 9 }, status);
  const counters = svg("text", { class: "node-counters", x: 0, y: -4 }, group);
  return { group, status, counters };
}

/** Labels for wires and links to (after the node) and from (before it) other flows. */
function drawPortals(node, g, index, group, handlers) {
  const draw = (flows, direction) => {
    let row = 0;
    for (const [flowName, nodes] of flows) {
      const text = portalText(flowName, direction);
      const width = textWidth(text, SMALL_FONT) + 12;
      const y = g.h / 2 + (row++ - (flows.size - 1) / 2) * 16;
      const x = direction === "out" ? g.w + PORTAL_GAP : -PORTAL_GAP - width - (norm(node.type) === "inject" ? INJECT_BUTTON : 0);
      const portal = svg("g", { class: "portal", "data-flow": flowName, role: "link" }, group);
      svg("title", {}, portal).textContent = `${direction === "out" ? "to" : "from"} ${nodes.map((n) => n.name).join(", ")} in ${flowName}`;
      svg("path", { class: "wire link", d: direction === "out" ? `M ${g.w} ${g.h / 2} L ${x} ${y}` : `M ${x + width} ${y} L 0 ${g.h / 2}` }, portal);
      svg("rect", { x, y: y - 8, width, height: 16, rx: 3 }, portal);
      svg("text", { x: x + 6, y, "dominant-baseline": "central" }, portal).textContent = text;
      portal.addEventListener("click", (event) => {
        event.stopPropagation();
        handlers.onNavigate(flowName, nodes.map((n) => n.id));
      });
    }
  };
  draw(index.outgoingPortals(node.id), "out");
  draw(index.incomingPortals(node.id), "in");
}

function formatSeconds(seconds) {
  if (seconds >= 1) return `${seconds.toFixed(2)} s`;
  if (seconds >= 0.001) return `${(seconds * 1000).toFixed(1)} ms`;
  return `${Math.round(seconds * 1e6)} µs`;
}

/** "3 in · 2 out · 1 err · 4.1 ms", empty while the node has seen nothing. */
export function countersText(c) {
  if (!c || !(c.in || c.out || c.errors)) return "";
  const parts = [`${c.in} in`, `${c.out} out`];
  if (c.errors) parts.push(`${c.errors} err`);
  parts.push(formatSeconds(c.handler_seconds || 0));
  return parts.join(" · ");
}

/** Every flow laid out and drawn; shows one at a time and applies live updates. */
export class FlowCanvas {
  constructor(container, configBar, handlers) {
    this.container = container;
    this.configBar = configBar;
    this.handlers = handlers;
    this.drawings = new Map();
    this.zoom = 1;
    this.current = null;
    this.selected = null;
    // ELK runs in a worker (static/vendor: elk-api.js here, the layout code in the worker).
    this.elk = new ELK({ workerUrl: "ui/vendor/elk-worker.min.js" }); // eslint-disable-line no-undef
    this.layouts = new LayoutCache();
    this.computed = 0; // layouts ELK made (the others came from the cache)
  }

  async layout(flow, index, geometries) {
    const graph = elkGraph(flow, index, geometries);
    const key = this.layouts.key(graph);
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = layoutOf(await this.elk.layout(graph));
      this.layouts.set(key, layout);
      this.computed += 1;
    }
    return layout;
  }

  /**
   * Lay out and draw every flow of ``view`` (GET /admin/view), replacing what was drawn.
   * ``wanted`` (a flow name) is laid out first and, on the first render, shown as soon as it
   * is drawn; a later render (a reload) swaps all flows at once.
   */
  async render(view, wanted) {
    const index = new FlowIndex(view);
    const names = view.flows.map((f) => f.name);
    const first = [wanted, this.current].find((n) => names.includes(n)) || names[0];
    const ordered = [...view.flows].sort((a, b) => (b.name === first) - (a.name === first));
    let drawing = 0; // milliseconds spent making SVG (the rest is waiting for the layouts)
    const drawings = ordered.map(async (flow) => {
      const geometries = new Map(flow.nodes.filter((n) => !n.config).map((n) => [n.id, geometry(n, index)]));
      const layout = await this.layout(flow, index, geometries);
      const start = performance.now();
      const made = new FlowDrawing(flow, index, layout, geometries, this.handlers);
      drawing += performance.now() - start;
      return made;
    });
    if (!this.drawings.size && drawings.length) {
      this.install(index, [await drawings[0]]);
      this.show(first);
      this.firstDrawn = performance.now();
    }
    const all = await Promise.all(drawings);
    this.install(index, names.map((name) => all.find((d) => d.flow.name === name)));
    this.drawMs = drawing;
    this.current = null;
    if (first) this.show(first);
    if (this.selected) this.select(this.selected);
    return index;
  }

  install(index, drawings) {
    this.index = index;
    this.container.replaceChildren(...drawings.map((d) => d.svg));
    this.drawings = new Map(drawings.map((d) => [d.flow.name, d]));
  }

  show(flowName) {
    if (!this.drawings.has(flowName)) return false;
    for (const [name, drawing] of this.drawings) drawing.svg.classList.toggle("active", name === flowName);
    this.configBar.replaceChildren(this.drawings.get(flowName).bar);
    this.current = flowName;
    this.applyZoom();
    return true;
  }

  setZoom(zoom) {
    this.zoom = Math.min(2, Math.max(0.25, zoom));
    this.applyZoom();
  }

  /** Zoom so that the flow shown fits the canvas (never above 100 %). */
  fit() {
    const drawing = this.drawings.get(this.current);
    if (!drawing) return;
    const { clientWidth, clientHeight } = this.container;
    this.setZoom(Math.min(1, clientWidth / drawing.width, clientHeight / drawing.height));
  }

  applyZoom() {
    const drawing = this.drawings.get(this.current);
    if (!drawing) return;
    drawing.svg.setAttribute("width", drawing.width * this.zoom);
    drawing.svg.setAttribute("height", drawing.height * this.zoom);
  }

  element(id) {
    for (const drawing of this.drawings.values()) {
      const found = drawing.elements.get(id);
      if (found) return found;
    }
    return null;
  }

  select(id) {
    for (const drawing of this.drawings.values()) {
      for (const found of drawing.elements.values()) found.group.classList.remove("selected");
    }
    this.selected = id;
    const found = this.element(id);
    if (found) found.group.classList.add("selected");
  }

  /** Bring a node into view (on its flow's tab) and mark it for a moment. */
  reveal(id) {
    const node = this.index?.get(id);
    if (!node) return;
    this.show(node.flow);
    const found = this.element(id);
    if (!found) return;
    found.group.scrollIntoView?.({ block: "center", inline: "center" });
    found.group.classList.add("highlight");
    setTimeout(() => found.group.classList.remove("highlight"), 2000);
  }

  setStatus(id, status) {
    const found = this.element(id);
    if (!found || !found.status) return;
    const shown = status && (status.text || status.fill || status.shape);
    if (found.chip) {
      found.status.hidden = !shown;
      found.status.textContent = shown ? status.text || "" : "";
      found.status.style.setProperty("--status-color", STATUS_COLORS[status?.fill] || STATUS_COLORS.grey);
      found.status.classList.toggle("shape-ring", status?.shape === "ring");
      return;
    }
    found.status.setAttribute("visibility", shown ? "visible" : "hidden");
    if (!shown) return;
    const dot = found.status.querySelector(".status-dot");
    const fill = STATUS_COLORS[status.fill] || null;
    dot.setAttribute("visibility", fill || status.shape ? "visible" : "hidden");
    dot.setAttribute("class", `status-dot shape-${status.shape === "ring" ? "ring" : "dot"}`);
    dot.style.setProperty("--status-color", fill || STATUS_COLORS.grey);
    const text = found.status.querySelector(".status-text");
    text.setAttribute("x", fill || status.shape ? 20 : 0);
    const full = status.text || "";
    text.textContent = full.length > 48 ? `${full.slice(0, 47)}…` : full;
    found.status.dataset.text = full;
  }

  setCounters(id, counters) {
    const found = this.element(id);
    if (!found) return;
    found.counters.textContent = countersText(counters);
    found.counters.classList.toggle("has-errors", Boolean(counters && counters.errors));
  }
}
