// The debug sidebar, as Node-RED's: each message with its time, node and "topic : property :
// format" line, the value as an expandable tree; errors and warnings with a red or orange
// edge (for a function node, the failing line and where it is in the file); a filter (all
// nodes, the current flow, the selected node), pause (what arrives meanwhile is counted and
// dropped, as Node-RED does) and clear.

import { decode, valueElement } from "./tree.js";

const KEEP = 500; // messages kept in the list; older ones are removed
// "NameError: ... (node-id, line 3)" or "(node-id, line 2, in setup)": nodes/function.
const FUNCTION_LINE = /\(([^,()]+), line (\d+)(?:, in (\w+))?\)\s*$/;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class DebugSidebar {
  /**
   * ``list``: the element messages go in; ``controls``: {pause, filter, clear} elements;
   * ``context``: {node(id) -> node view or undefined, currentFlow(), selectedNode(),
   * reveal(id), showSource(id, field, line)}.
   */
  constructor(list, controls, context) {
    this.list = list;
    this.context = context;
    this.filter = controls.filter;
    this.paused = null; // the "Paused" marker while paused
    this.dropped = 0;
    controls.filter.addEventListener("change", () => this.refilter());
    controls.clear.addEventListener("click", () => this.clear());
    controls.pause.addEventListener("click", () => {
      this.togglePause();
      controls.pause.textContent = this.paused ? "resume" : "pause";
      controls.pause.classList.toggle("active", Boolean(this.paused));
    });
  }

  /** A debug node's output (the ``debug`` event). */
  debug(event) {
    const topic = event.topic ? `${event.topic} : ` : "";
    const property = event.property === "msg" ? "msg" : `msg.${event.property}`;
    const body = valueElement(decode(event.msg, event.format));
    this.add(event.id, event.flow, event.name, `${topic}${property} : ${event.format}`, body);
  }

  /** A node's error (the ``error`` event). */
  error(event) {
    const body = el("div", "msg-element msg-top-level");
    body.append(el("span", "msg-type-string msg-error-text", event.message));
    const match = FUNCTION_LINE.exec(event.message || "");
    if (match && match[1] === event.node) this.addLine(body, event.node, match[3] || "code", Number(match[2]));
    this.add(event.node, event.flow, null, `${event.type} : (error)`, body, "error");
  }

  /** A node's warning (a ``log`` event at WARNING). */
  warning(event) {
    const node = this.context.node(event.node);
    const body = el("div", "msg-element msg-top-level");
    body.append(el("span", "msg-type-string", event.message));
    this.add(event.node, event.flow, null, `${node ? node.type : "node"} : (warn)`, body, "warn");
  }

  /** A note from the page itself (events dropped, flows reloaded). */
  note(text) {
    const entry = el("div", "debug-msg level-note");
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-date", new Date().toLocaleString()), el("span", "msg-name", text));
    entry.append(meta);
    this.append(entry);
  }

  addLine(body, nodeId, field, line) {
    const node = this.context.node(nodeId);
    const first = node && node.blocks ? node.blocks[field] : undefined;
    const where = first ? `${node.file.split("/").pop()}:${first + line - 1}` : null;
    const link = el("a", "msg-line", `line ${line}${field !== "code" ? ` of ${field}` : ""}${where ? ` (${where})` : ""}`);
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      this.context.showSource(nodeId, field, line);
    });
    body.append(" ", link);
  }

  add(nodeId, flow, name, topicLine, body, level = null) {
    if (this.paused) {
      this.dropped += 1;
      this.paused.querySelector(".msg-name").textContent =
        `Paused: ${this.dropped} message${this.dropped === 1 ? "" : "s"} dropped`;
      return;
    }
    const node = this.context.node(nodeId);
    const entry = el("div", "debug-msg" + (level ? ` level-${level}` : ""));
    entry.dataset.node = nodeId;
    entry.dataset.flow = flow;
    const meta = el("div", "msg-meta");
    const link = el("a", "msg-name", `node: ${name || (node ? node.name : nodeId)}`);
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      this.context.reveal(nodeId);
    });
    meta.append(el("span", "msg-date", new Date().toLocaleString()), link, el("span", "msg-topic", topicLine));
    const payload = el("div", "msg-payload");
    payload.append(body);
    entry.append(meta, payload);
    entry.addEventListener("mouseenter", () => this.context.hover(nodeId, true));
    entry.addEventListener("mouseleave", () => this.context.hover(nodeId, false));
    this.hideIfFiltered(entry);
    this.append(entry);
  }

  append(entry) {
    const atBottom = this.list.scrollHeight - this.list.clientHeight - this.list.scrollTop < 5;
    this.list.append(entry);
    while (this.list.childElementCount > KEEP) this.list.firstElementChild.remove();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  hideIfFiltered(entry) {
    if (!entry.dataset.node) return;
    const mode = this.filter.value;
    const hidden = (mode === "flow" && entry.dataset.flow !== this.context.currentFlow())
      || (mode === "node" && entry.dataset.node !== this.context.selectedNode());
    entry.classList.toggle("hidden", hidden);
  }

  /** Apply the filter again (after the filter, the flow shown or the selection changed). */
  refilter() {
    for (const entry of this.list.children) this.hideIfFiltered(entry);
  }

  clear() {
    this.list.replaceChildren();
    if (this.paused) this.list.append(this.paused);
  }

  togglePause() {
    if (this.paused) {
      this.paused = null;
      return;
    }
    this.dropped = 0;
    this.paused = el("div", "debug-msg level-paused");
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-date", new Date().toLocaleString()), el("span", "msg-name", "Paused"));
    this.paused.append(meta);
    this.append(this.paused);
  }
}
