// The admin API as the page uses it: JSON reads, inject, the event stream. Every URL is
// relative to /admin/, so the page works behind a path prefix too.

const TOKEN_KEY = "flowengine.adminToken";

/** The admin token entered in this tab ("" when none). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** An admin API answer other than 2xx: ``status`` and the API's ``error`` text. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}

export async function getJSON(path) {
  return answer(await fetch(path, { headers: headers(), cache: "no-store" }));
}

export async function inject(nodeId) {
  return answer(await fetch(`inject/${encodeURIComponent(nodeId)}`,
                            { method: "POST", headers: headers() }));
}

/**
 * Keep a websocket to /admin/events open, reconnecting after a pause when it drops.
 * ``onEvent(kind, data)`` gets every event; ``onState("open"|"closed")`` the connection.
 * A browser cannot set an Authorization header on a websocket: the token, when one was
 * entered, goes in the first frame as {"token": ...}. Returns ``presentToken()``, which sends
 * a token entered since on the open socket.
 */
export function openEvents(onEvent, onState) {
  let socket = null;
  let retry = 500;
  const connect = () => {
    const url = new URL("events?counters=1", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.onopen = () => {
      retry = 500;
      const t = token();
      if (t) socket.send(JSON.stringify({ token: t }));
      onState("open");
    };
    socket.onmessage = (frame) => {
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch {
        return;
      }
      onEvent(event.kind, event.data);
    };
    socket.onclose = () => {
      onState("closed");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  connect();
  return () => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ token: token() }));
  };
}
