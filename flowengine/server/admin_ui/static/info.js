// The "node" tab of the sidebar: the selected node's configuration as YAML (from
// GET /admin/source/{id}, secrets masked by the server), the file and line it is defined on,
// a vscode:// link to open it there, and its live status and counters.

import { getJSON } from "./api.js";
import { countersText } from "./graph.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The line of ``yaml`` (our dump of one node) holding line ``line`` of block field ``field``. */
function yamlLine(yaml, field, line) {
  const lines = yaml.split("\n");
  const start = lines.findIndex((text) => new RegExp(`^\\s+${field}: [|>]`).test(text));
  return start < 0 ? -1 : start + line;
}

export class NodeInfo {
  /** ``panel``: the tab's element; ``lookup(id)``: the node's view data (with flow, file). */
  constructor(panel, lookup) {
    this.panel = panel;
    this.lookup = lookup;
    this.id = null;
    this.live = null;
  }

  /** Show node ``id``; with ``field`` and ``line``, mark that line of that field (an error). */
  async show(id, field = null, line = null) {
    this.id = id;
    let source;
    try {
      source = await getJSON(`source/${encodeURIComponent(id)}`);
    } catch (error) {
      if (this.id === id) this.panel.replaceChildren(el("p", "placeholder", `${id}: ${error.message}`));
      return;
    }
    if (this.id !== id) return; // another node was clicked meanwhile
    const node = this.lookup(id) || {};
    const header = el("div", "info-header");
    const swatch = el("span", "swatch");
    swatch.style.background = node.color || "#ddd";
    header.append(swatch, el("span", "info-name", node.name || id), el("span", "info-type", source.type));
    const table = el("table", "info-table");
    const row = (label, value) => {
      const tr = el("tr");
      tr.append(el("th", "", label));
      const td = el("td");
      td.append(value);
      table.append(tr);
      tr.append(td);
      return td;
    };
    row("id", id);
    row("flow", source.flow);
    const file = el("span", "info-file", `${source.file}:${source.line}`);
    const fileCell = row("file", file);
    if (source.editor) {
      const open = el("a", "info-editor", "open in VS Code");
      open.href = source.editor;
      fileCell.append(" ", open);
    }
    let errorLine = -1;
    if (field && line && node.blocks && node.blocks[field]) {
      const fileLine = node.blocks[field] + line - 1;
      const at = row("error at", `${field} line ${line}: ${source.file}:${fileLine}`);
      if (source.editor) {
        const open = el("a", "info-editor", "open");
        open.href = source.editor.replace(/:\d+:\d+$/, `:${fileLine}:1`);
        at.append(" ", open);
      }
      errorLine = yamlLine(source.yaml, field, line);
    }
    this.live = { status: row("status", ""), counters: row("counters", "") };
    const pre = el("pre", "info-yaml");
    source.yaml.split("\n").forEach((text, i) => {
      const span = el("span", i === errorLine ? "yaml-line error-line" : "yaml-line", `${text}\n`);
      pre.append(span);
    });
    this.panel.replaceChildren(header, table, pre);
    pre.querySelector(".error-line")?.scrollIntoView({ block: "center" });
  }

  /** Live updates of the node shown. */
  update(id, { status, counters }) {
    if (id !== this.id || !this.live) return;
    if (status !== undefined) {
      this.live.status.textContent = status && status.text ? `${status.fill || ""} ${status.shape || ""} ${status.text}`.trim() : "";
    }
    if (counters !== undefined) this.live.counters.textContent = countersText(counters) || "none yet";
  }
}
