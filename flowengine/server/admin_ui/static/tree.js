// A debug value as Node-RED's sidebar shows it: a one-line preview that expands into a tree
// (objects by key, arrays by index), strings quoted, numbers, null and undefined typed.

const PREVIEW_KEYS = 5; // entries shown in a collapsed object's one-line preview

/**
 * The value a debug event carries, decoded by its format (nodes/common/debug.py: Node-RED's
 * shape): "Object" and "array[n]" are JSON, an "error" is {__enc__, type: "error", data},
 * a truncated array is {__enc__, type: "array", data, length}.
 */
export function decode(text, format) {
  const base = (format || "").replace(/\[\d+\]$/, "");
  if (base === "Object" || base === "array" || base === "error") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (base === "number") return new Shown("number", text);
  if (base === "boolean") return text === "true";
  if (base === "null") return null;
  if (base === "undefined") return undefined;
  if (base === "buffer") return new Shown("buffer", `${format} ${text}`);
  return text; // strings, and repr() of other Python values
}

/** A value the runtime sent as text to show as it is: a number ("NaN"), a buffer's hex. */
class Shown {
  constructor(type, text) {
    this.type = type;
    this.text = text;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function isEncoded(value) {
  return value !== null && typeof value === "object" && value.__enc__ === true;
}

function kind(value) {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value !== "object") return typeof value;
  if (value instanceof Shown) return value.type;
  if (isEncoded(value) && value.type === "array") return "array";
  if (isEncoded(value) && value.type === "error") return "error";
  return "object";
}

/** The entries of an expandable value: [key, value] pairs. */
function entries(value) {
  switch (kind(value)) {
    case "array":
      return (isEncoded(value) ? value.data : value).map((v, i) => [i, v]);
    case "error":
      return Object.entries(value.data || {});
    case "object":
      return Object.entries(value);
    default:
      return [];
  }
}

function length(value) {
  return value.length; // a truncated array's {__enc__, length} too
}

/** A leaf value as a typed span: "text", 42, true, null, undefined. */
function leaf(value) {
  switch (kind(value)) {
    case "string":
      return el("span", "msg-type-string", JSON.stringify(value));
    case "number":
      return el("span", "msg-type-number", value instanceof Shown ? value.text : String(value));
    case "boolean":
      return el("span", "msg-type-other", String(value));
    case "null":
      return el("span", "msg-type-null", "null");
    case "undefined":
      return el("span", "msg-type-null", "undefined");
    case "buffer":
      return el("span", "msg-type-other", value.text);
    default:
      return el("span", "msg-type-other", String(value));
  }
}

/** How a nested value reads inside a preview: "object", "array[3]", or the leaf itself. */
function short(value) {
  const k = kind(value);
  if (k === "object" || k === "error") return el("span", "msg-type-meta", k === "error" ? "error" : "object");
  if (k === "array") return el("span", "msg-type-meta", `array[${length(value)}]`);
  if (k === "string" && value.length > 40) return el("span", "msg-type-string", JSON.stringify(value.slice(0, 37) + "…"));
  return leaf(value);
}

function preview(value) {
  const k = kind(value);
  const span = el("span", "msg-object-header");
  if (k === "array") {
    span.append(el("span", "msg-type-meta", `array[${length(value)}]`));
    return span;
  }
  const items = entries(value);
  span.append(k === "error" ? "error { " : "{ ");
  items.slice(0, PREVIEW_KEYS).forEach(([key, v], i) => {
    if (i) span.append(", ");
    span.append(el("span", "msg-object-key", String(key)), ": ", short(v));
  });
  if (items.length > PREVIEW_KEYS) span.append(", …");
  span.append(" }");
  return span;
}

/**
 * The element for ``value``: an expandable tree for objects and arrays (collapsed, one-line
 * preview), a typed span for everything else. ``key`` labels a nested entry.
 */
export function valueElement(value, key = null, topLevel = true) {
  const k = kind(value);
  const expandable = k === "object" || k === "array" || k === "error";
  const element = el("div", "msg-element" + (topLevel ? " msg-top-level" : "") + (expandable ? " collapsed" : ""));
  const row = el("div", "msg-row" + (expandable ? " msg-expandable" : ""));
  element.append(row);
  if (expandable) row.append(el("span", "msg-object-handle", "▸"));
  if (key !== null) row.append(el("span", "msg-object-key", String(key)), ": ");
  if (!expandable) {
    row.append(leaf(value));
    return element;
  }
  const header = el("span", "msg-object-type", k === "array" ? `array[${length(value)}]` : k);
  row.append(preview(value), header);
  let filled = false;
  row.addEventListener("click", (event) => {
    event.stopPropagation();
    if (!filled) {
      for (const [childKey, child] of entries(value)) {
        const entry = valueElement(child, childKey, false);
        entry.classList.add("msg-object-entry");
        element.append(entry);
      }
      if (isEncoded(value) && value.type === "array" && value.length > value.data.length) {
        element.append(el("div", "msg-object-entry msg-type-meta", `… ${value.length - value.data.length} more`));
      }
      filled = true;
    }
    element.classList.toggle("collapsed");
  });
  return element;
}
