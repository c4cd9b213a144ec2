// Small helpers shared by the video page (app.js) and the dashboard (dashboard.js).

/** The first element matching `selector`. */
export const $ = (selector, root = document) => root.querySelector(selector);

/**
 * Open ws(s)://<this host><path> and keep it open: reconnects with backoff (1 s doubling up to
 * 10 s). `onOpen(socket)`, `onMessage(text)`, `onClose(retryInMs)`.
 */
export function connectSocket(path, { onOpen, onMessage, onClose }) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  let delay = 1000;
  const open = () => {
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 1000;
      onOpen?.(socket);
    });
    socket.addEventListener("message", (event) => onMessage(event.data));
    socket.addEventListener("close", () => {
      onClose?.(delay);
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    });
  };
  open();
}

/** A session id the server accepts (1-64 of A-Z a-z 0-9 _ -), also on plain-http origins
 * where crypto.randomUUID is missing. */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function formatRate(bitsPerSecond) {
  if (bitsPerSecond === null || bitsPerSecond === undefined) return "–";
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(2)} Mbit/s`;
  return `${(bitsPerSecond / 1e3).toFixed(0)} kbit/s`;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  // A no-break space keeps the figure and its unit on one line.
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)}\u00a0MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)}\u00a0KiB`;
  return `${bytes}\u00a0B`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

/** Local time of day of an ISO timestamp (HH:MM:SS). */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
}
