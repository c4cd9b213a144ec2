// The demo's video pages: publishes the webcam (optionally through the magic mirror) or the
// screen, plays a URL through the media server, watches running sessions, records them; on the
// group page (group.html, which lists only group sessions) joins and watches the group call.
// Signaling is the JSON protocol of flows/README.md over the websocket /signaling; ICE
// candidates trickle both ways. Controls a page does not have are skipped.
//
// Plain ES module, no build step, no library.

import { $, connectSocket, formatBytes, formatDuration, formatRate, formatTime, newId }
  from "./common.js";

const state = {
  socket: null,          // the open /signaling socket, or null
  connectionId: null,    // this socket's id in the server's `owner` fields
  iceServers: [],        // from the server's hello (TURN when configured)
  peers: new Map(),      // sessionId -> Peer (this page's own sessions)
  sessions: [],          // every running session on the server
  recordings: [],
};

// -- signaling ------------------------------------------------------------------------------

function send(message) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    showError("not connected to the server: try again in a moment");
    return false;
  }
  state.socket.send(JSON.stringify(message));
  return true;
}

const handlers = {
  hello(msg) {
    state.connectionId = msg.connectionId;
    state.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
    setConnection("open", `Connected · connection ${msg.connectionId}`);
    const turn = state.iceServers.flatMap((s) => [].concat(s.urls)).join(", ");
    if ($("#ice-servers")) $("#ice-servers").textContent = turn ? `TURN: ${turn}` : "No TURN server configured";
    if ($("#relay-only")) $("#relay-only").disabled = !turn;
    send({ id: "sessions" });
    send({ id: "recordings" });
  },
  startResponse: (msg) => state.peers.get(msg.sessionId)?.answer(msg.sdpAnswer),
  playResponse: (msg) => state.peers.get(msg.sessionId)?.answer(msg.sdpAnswer),
  viewerResponse: (msg) => state.peers.get(msg.sessionId)?.answer(msg.sdpAnswer),
  iceCandidate: (msg) => state.peers.get(msg.sessionId)?.addRemoteCandidate(msg.candidate),
  playEnd(msg) {
    state.peers.get(msg.sessionId)?.sourceEnded();
  },
  stopped(msg) {
    const peer = state.peers.get(msg.sessionId);
    if (!peer) return;
    const why = { "source-stopped": "its source stopped", "media-error": "a media error" };
    peer.end(`Ended: ${why[msg.reason] || msg.reason || "stopped"}.`);
  },
  sessions(msg) {
    state.sessions = msg.sessions || [];
    renderSessions();
  },
  recording(msg) {
    for (const peer of peersShowing(msg.sessionId)) {
      peer.setDetail(`Recording to ${msg.file} (${msg.profile}).`, "recording");
    }
  },
  recordingStopped(msg) {
    // To every page: the cards that showed "Recording to ..." say where the file went.
    for (const peer of peersShowing(msg.sessionId)) {
      if (peer.detailKind !== "recording") continue;
      const size = msg.size ? `, ${formatBytes(msg.size)}` : "";
      peer.setDetail(`Recording stopped: ${msg.file}${size} is listed under Recordings.`);
    }
    const { id, ...entry } = msg;  // the file's entry, as in the recordings list
    entry.stoppedAt ||= new Date().toISOString();
    entry.pending = true;  // until the server's list has it (its database write may lag)
    state.recordings = [entry, ...state.recordings.filter((r) => r.file !== msg.file)];
    renderRecordings();
    send({ id: "recordings" });  // and the list as the server keeps it
  },
  recordings(msg) {
    // A list answered before the server stored a just-finished recording must not hide it.
    const listed = msg.recordings || [];
    const files = new Set(listed.map((r) => r.file));
    const pending = state.recordings.filter((r) => r.pending && !files.has(r.file));
    state.recordings = [...pending, ...listed];
    renderRecordings();
  },
  "request-stats": (msg) => reportStats(msg.round),
  error(msg) {
    // Candidates already on their way when a session failed or stopped get "unknown session":
    // expected, and not worth a person's attention.
    if (msg.request === "onIceCandidate" && !state.peers.has(msg.sessionId)) return;
    showError(msg.message || "unknown error", msg.request);
    // A failed start/play/viewer leaves nothing on the server: end its card too. The error
    // names the session; if it does not, the one unanswered request of that kind is meant.
    const waiting = [...state.peers.values()].filter((p) => !p.answered && p.request === msg.request);
    const peer = msg.sessionId ? state.peers.get(msg.sessionId) : waiting.length === 1 && waiting[0];
    if (peer && !peer.answered) {
      peer.end(`Failed: ${msg.message}`);
    }
  },
};

function onMessage(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    showError("the server sent a frame that is not JSON");
    return;
  }
  const handler = handlers[msg.id];
  if (handler) handler(msg);
  else console.warn("unhandled message", msg);
}

function setConnection(stateName, text) {
  const el = $("#connection");
  el.dataset.state = stateName;
  el.textContent = text;
}

connectSocket("/signaling", {
  onOpen(socket) {
    state.socket = socket;
    setConnection("open", "Connected");
  },
  onMessage,
  onClose(retryIn) {
    state.socket = null;
    state.connectionId = null;
    setConnection("closed", `Disconnected · retrying in ${Math.round(retryIn / 1000)} s`);
    // The server releases a closed socket's sessions: so do we.
    for (const peer of [...state.peers.values()]) peer.end("Ended: connection to the server lost.");
  },
});

// -- one WebRTC session of this page --------------------------------------------------------

/** The card of one session (in "My sessions"). */
const PEER_CARD = `
<article class="peer" aria-live="polite">
  <header class="peer-head">
    <h3 class="peer-title"></h3>
    <span class="badge peer-state">connecting</span>
    <span class="badge recording-badge" hidden>● recording</span>
  </header>
  <video class="peer-video" playsinline autoplay></video>
  <p class="peer-detail"></p>
  <dl class="peer-stats">
    <div><dt>Frame rate</dt><dd data-stat="frameRate">–</dd></div>
    <div><dt>Resolution</dt><dd data-stat="resolution">–</dd></div>
    <div><dt>Bitrate</dt><dd data-stat="bitrate">–</dd></div>
    <div><dt>Packets lost</dt><dd data-stat="packetsLost">–</dd></div>
  </dl>
  <div class="peer-actions">
    <button type="button" class="record">Record</button>
    <button type="button" class="stop-record" hidden>Stop recording</button>
    <button type="button" class="stop danger">Stop</button>
  </div>
</article>`;

class Peer {
  /**
   * @param {"webcam"|"screen"|"group"|"player"|"viewer"} kind
   * @param {string} title shown on the card
   * @param {{source?: string, twoWay?: boolean}} options `source`: for a viewer, the session it
   *   watches; `twoWay`: a publisher that gets media back (the group, a mirror)
   */
  constructor(kind, title, { source = null, twoWay = false } = {}) {
    this.kind = kind;
    this.id = newId();
    this.source = source;        // for a viewer: the session it watches
    this.sourceGone = false;     // the source reached its end: nothing more will come
    this.detailKind = null;      // what the detail line tells ("recording", ...)
    this.sending = kind === "webcam" || kind === "screen" || kind === "group";
    this.twoWay = twoWay;
    this.request = null;       // the id of the message that started it: start, play or viewer
    this.answered = false;
    this.ended = false;
    this.remoteCandidates = [];  // the server's candidates that came before the answer
    this.previous = null;        // last stats sample, for bitrate and packets lost deltas
    this.stream = null;
    this.pc = new RTCPeerConnection({
      iceServers: state.iceServers,
      iceTransportPolicy: $("#relay-only")?.checked ? "relay" : "all",
    });
    // Trickle ICE: every candidate goes to the server as soon as the browser finds it; the
    // flows queue those that arrive before the session's endpoint exists.
    this.pc.addEventListener("icecandidate", (event) => {
      if (event.candidate && event.candidate.candidate && !this.ended) {
        send({ id: "onIceCandidate", sessionId: this.id, candidate: event.candidate.toJSON() });
      }
    });
    this.pc.addEventListener("connectionstatechange", () => this.showState());
    this.pc.addEventListener("track", (event) => {
      if (!this.sending || this.twoWay) {
        this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      }
    });
    this.card = this.render(title);
    state.peers.set(this.id, this);
    updateEmpty();
  }

  render(title) {
    const holder = document.createElement("template");
    holder.innerHTML = PEER_CARD;
    const card = holder.content.firstElementChild;
    card.dataset.sessionId = this.id;
    card.dataset.kind = this.kind;
    card.querySelector(".peer-title").textContent = title;
    this.video = card.querySelector("video");
    this.video.setAttribute("aria-label", `${title} video`);
    // A local preview or a mirror: no echo. The group sends back the others' voices only.
    if (this.sending && this.kind !== "group") this.video.muted = true;
    else this.video.controls = true;
    card.querySelector(".record").addEventListener("click", () =>
      send({ id: "record", sessionId: this.id, profile: "MP4" }));
    card.querySelector(".stop-record").addEventListener("click", () =>
      send({ id: "stopRecord", sessionId: this.id }));
    card.querySelector(".stop").addEventListener("click", () => this.stop());
    $("#peers").prepend(card);
    return card;
  }

  /** Send the offer in `message` (start / play / viewer) with this session's id. */
  async offer(message) {
    this.request = message.id;
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    send({ ...message, sessionId: this.id, sdpOffer: offer.sdp });
  }

  async answer(sdp) {
    if (this.ended) return;
    this.answered = true;
    try {
      await this.pc.setRemoteDescription({ type: "answer", sdp });
      // Candidates added before the remote description are dropped: add the queued ones now.
      for (const candidate of this.remoteCandidates.splice(0)) await this.pc.addIceCandidate(candidate);
    } catch (err) {
      showError(`session ${this.id}: ${err.message}`);
      this.stop();
    }
    this.showState();
  }

  async addRemoteCandidate(candidate) {
    if (this.ended) return;
    if (!this.pc.remoteDescription) {
      this.remoteCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      console.warn("candidate refused", candidate, err);
    }
  }

  showState() {
    if (this.ended || this.sourceGone) return;
    const label = this.answered ? this.pc.connectionState : "negotiating";
    const badge = this.card.querySelector(".peer-state");
    badge.textContent = label;
    badge.dataset.state = label;
    if (this.pc.connectionState === "connected" && !this.previous) this.sample();
  }

  setDetail(text, kind = null) {
    this.card.querySelector(".peer-detail").textContent = text;
    this.detailKind = kind;
  }

  /** Recording state comes from the server's session list (also for a viewer's source). */
  showRecording(recording) {
    if (this.ended) return;
    this.card.querySelector(".record").hidden = recording || this.sourceGone;
    this.card.querySelector(".stop-record").hidden = !recording;
    this.card.querySelector(".recording-badge").hidden = !recording;
  }

  /** The source reached its end (a player's playEnd, or a viewer's source listed as ended):
   * the session stays on the server until removed, but has nothing more to show or record. */
  sourceEnded() {
    if (this.ended || this.sourceGone) return;
    this.sourceGone = true;
    const badge = this.card.querySelector(".peer-state");
    badge.textContent = "source ended";
    badge.dataset.state = "source-ended";
    this.setDetail("The source reached its end. Remove the session when you are done.");
    this.card.querySelector(".record").hidden = true;
    const stop = this.card.querySelector(".stop");
    stop.textContent = "Remove";
    stop.setAttribute("aria-label", "Remove this ended session");
  }

  /** Stop button: stop the session (if still running) and remove its card. */
  stop() {
    if (!this.ended) {
      send({ id: "stop", sessionId: this.id });
      this.end("");
    }
    this.card.remove();
    updateEmpty();
  }

  /** Close the peer connection; the card stays with `why` until dismissed. */
  end(why) {
    if (!this.ended) {
      this.ended = true;
      this.pc.close();
      for (const track of this.stream?.getTracks() || []) track.stop();
      state.peers.delete(this.id);
    }
    if (!why) return;
    const badge = this.card.querySelector(".peer-state");
    badge.textContent = "ended";
    badge.dataset.state = "ended";
    this.setDetail(why);
    for (const button of this.card.querySelectorAll(".record, .stop-record")) button.hidden = true;
    const stop = this.card.querySelector(".stop");  // now only removes the card
    stop.textContent = "Dismiss";
    stop.classList.remove("danger");
  }

  // -- stats (request-stats) --

  async sample() {
    const report = await this.pc.getStats();
    let rtp = null;
    let remoteInbound = null;
    report.forEach((s) => {
      if (s.kind !== "video") return;
      if (s.type === (this.sending ? "outbound-rtp" : "inbound-rtp")) {
        const bytes = this.sending ? s.bytesSent : s.bytesReceived;
        if (!rtp || bytes > (this.sending ? rtp.bytesSent : rtp.bytesReceived)) rtp = s;
      } else if (s.type === "remote-inbound-rtp") {
        remoteInbound = s;
      }
    });
    if (!rtp) return null;
    const sample = {
      time: rtp.timestamp,
      bytes: (this.sending ? rtp.bytesSent : rtp.bytesReceived) || 0,
      // A sender learns its losses from the receiver's reports (remote-inbound-rtp).
      lost: this.sending ? remoteInbound?.packetsLost ?? null : rtp.packetsLost ?? null,
    };
    const previous = this.previous;
    this.previous = sample;
    const seconds = previous ? (sample.time - previous.time) / 1000 : 0;
    return {
      frameRate: numberOrNull(rtp.framesPerSecond),
      width: numberOrNull(rtp.frameWidth),
      height: numberOrNull(rtp.frameHeight),
      bitrate: seconds > 0 ? Math.round((8 * (sample.bytes - previous.bytes)) / seconds) : null,
      packetsLost: sample.lost === null ? null
        : Math.max(0, sample.lost - (previous?.lost ?? 0)),
    };
  }

  showStats(stats) {
    const cell = (name) => this.card.querySelector(`[data-stat="${name}"]`);
    cell("frameRate").textContent = stats.frameRate === null ? "–" : `${stats.frameRate.toFixed(0)} fps`;
    cell("resolution").textContent = stats.width ? `${stats.width}×${stats.height}` : "–";
    cell("bitrate").textContent = formatRate(stats.bitrate);
    cell("packetsLost").textContent = stats.packetsLost === null ? "–" : String(stats.packetsLost);
  }
}

/** This page's sessions that show the media of session `sid`: itself, or viewers of it. */
function peersShowing(sid) {
  return [...state.peers.values()].filter((p) => p.id === sid || p.source === sid);
}

function numberOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Answer the server's request-stats round with one `stats` message per session. */
async function reportStats(round) {
  for (const peer of state.peers.values()) {
    if (peer.ended || !peer.answered) continue;
    try {
      const stats = await peer.sample();
      if (!stats) continue;
      peer.showStats(stats);
      send({ id: "stats", sessionId: peer.id, round, stats });
    } catch (err) {
      console.warn("getStats failed", err);
    }
  }
}

// -- starting sessions ----------------------------------------------------------------------

async function startPublisher(kind) {
  const name = $("#session-name").value.trim();
  const mirror = kind === "webcam" && Boolean($("#mirror")?.checked);
  let stream;
  try {
    stream = kind === "screen"
      ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
      : await getCamera();
  } catch (err) {
    showError(`${kind === "screen" ? "screen sharing" : "camera"}: ${err.message}`);
    return;
  }
  const title = { screen: "Screen", group: "Group call", webcam: mirror ? "Mirror" : "Webcam" }[kind];
  const twoWay = kind === "group" || mirror;
  const peer = new Peer(kind, `${title}${name ? ` · ${name}` : ""}`, { twoWay });
  peer.stream = stream;
  if (!twoWay) peer.video.srcObject = stream;  // else what comes back is shown
  for (const track of stream.getTracks()) {
    peer.pc.addTransceiver(track, { direction: twoWay ? "sendrecv" : "sendonly", streams: [stream] });
    // The browser's own "Stop sharing" button ends the track: end the session with it.
    track.addEventListener("ended", () => { if (!peer.ended) peer.stop(); });
  }
  await negotiate(peer, { id: "start", kind, ...(name ? { name } : {}), ...(mirror ? { mirror } : {}) });
}

/** Send the peer's offer; a browser-side failure ends its card with the reason. */
async function negotiate(peer, message) {
  try {
    await peer.offer(message);
  } catch (err) {
    showError(`${message.id}: ${err.message}`);
    peer.end(`Failed: ${err.message}`);
  }
}

async function getCamera() {
  try {
    return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    if (err.name !== "NotFoundError" && err.name !== "NotReadableError") throw err;
    return navigator.mediaDevices.getUserMedia({ video: true });  // a camera without microphone
  }
}

/** A receive-only session: `play` of a URL or `viewer` of a running session. */
async function startReceiver(kind, title, message, source = null) {
  const peer = new Peer(kind, title, { source });
  peer.pc.addTransceiver("video", { direction: "recvonly" });
  peer.pc.addTransceiver("audio", { direction: "recvonly" });
  await negotiate(peer, message);
  return peer;
}

function watch(session) {
  return startReceiver("viewer", `Watching ${describe(session)}`,
    { id: "viewer", source: session.sessionId }, session.sessionId);
}

function describe(session) {
  const kind = { webcam: "webcam", screen: "screen", group: "group call", player: "player" }[session.kind]
    || session.kind;
  return session.name ? `${session.name} (${kind})` : `${kind} ${session.sessionId.slice(0, 8)}`;
}

$("#start-webcam")?.addEventListener("click", () => startPublisher("webcam"));
$("#start-screen")?.addEventListener("click", () => startPublisher("screen"));
$("#join-group")?.addEventListener("click", () => startPublisher("group"));
$("#play-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = $("#play-url").value.trim();
  if (url) startReceiver("player", `Playing ${url}`, { id: "play", url });
});
if ($("#relay-only")) $("#relay-only").checked = new URLSearchParams(location.search).get("relay") === "1";

// file:// URLs: the embedded media server plays only files inside its media folder; say which.
fetch("/api/host").then((r) => (r.ok ? r.json() : null)).then((host) => {
  if (!host) return;
  const hint = $("#play-hint");
  if (host.mediaDir) {
    const field = $("#play-url");
    field.placeholder = field.placeholder.replace("file:///…/media/", `file://${host.mediaDir}/`);
    hint.textContent = `HLS (http/https), RTSP, or a file inside the media folder ${host.mediaDir} `
      + "(file://…; files elsewhere on the server cannot be played).";
  } else {
    hint.textContent = "HLS (http/https), RTSP, or file://… naming a file on the media server's host.";
  }
}).catch(() => {});

// -- lists ----------------------------------------------------------------------------------

/** The sessions this page lists: every one, or the kinds of the body's data-kinds. */
function listedSessions() {
  const kinds = document.body.dataset.kinds?.split(" ");
  return kinds ? state.sessions.filter((s) => kinds.includes(s.kind)) : state.sessions;
}

function renderSessions() {
  const body = $("#sessions tbody");
  body.replaceChildren();
  const byId = new Map(state.sessions.map((s) => [s.sessionId, s]));
  // A row (and a card) shows the media of its session: for a viewer, its source's. What that
  // media is doing (recording, ended) is what the row says and what its buttons act on.
  const shownBy = (session) => (session.source && byId.get(session.source)) || session;
  const listed = listedSessions();
  for (const session of listed) {
    const recording = Boolean(shownBy(session).recording);
    const mine = session.owner === state.connectionId;
    const row = document.createElement("tr");
    row.dataset.sessionId = session.sessionId;
    row.dataset.kind = session.kind;
    row.dataset.state = session.ended ? "ended" : "live";
    const source = session.url || (session.source ? `session ${session.source.slice(0, 8)}` : "");
    const cells = [
      (session.name ? `${session.name} · ` : "") + session.sessionId.slice(0, 8) + (mine ? " (yours)" : ""),
      session.kind, source, String(session.viewers ?? 0), formatTime(session.startedAt),
    ];
    for (const [index, text] of cells.entries()) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (index === 2) cell.className = "long";  // the source URL
      row.append(cell);
    }
    const badges = row.firstElementChild;
    if (session.ended) badges.append(" ", badge("ended", "ended"));
    if (recording) badges.append(" ", badge("● recording", "recording"));
    const actions = document.createElement("td");
    actions.className = "actions";
    if (!session.ended && session.kind !== "viewer") {
      actions.append(button("Watch", `Watch ${describe(session)}`, "watch", () => watch(session)));
    }
    if (recording) {  // also from a viewer's row: the server stops its source's recording
      actions.append(button("Stop recording", `Stop recording ${describe(shownBy(session))}`,
        "stop-record", () => send({ id: "stopRecord", sessionId: session.sessionId })));
    } else if (!session.ended) {
      actions.append(button("Record", `Record ${describe(shownBy(session))}`, "record",
        () => send({ id: "record", sessionId: session.sessionId, profile: "MP4" })));
    }
    if (session.ended && mine) {
      actions.append(button("Remove", `Remove ${describe(session)}`, "remove danger", () => {
        const peer = state.peers.get(session.sessionId);
        if (peer) peer.stop();  // and its card goes
        else send({ id: "stop", sessionId: session.sessionId });
      }));
    }
    row.append(actions);
    body.append(row);
  }
  $("#no-sessions").hidden = listed.length > 0;
  for (const peer of state.peers.values()) {
    const session = byId.get(peer.id);
    if (session?.ended) peer.sourceEnded();
    peer.showRecording(Boolean(session && shownBy(session).recording));
  }
}

/** A small label in a table cell ("ended", "● recording"). */
function badge(text, stateName) {
  const el = document.createElement("span");
  el.className = "badge";
  el.dataset.state = stateName;
  el.textContent = text;
  return el;
}

function renderRecordings() {
  if (!$("#recordings")) return;
  const body = $("#recordings tbody");
  body.replaceChildren();
  for (const rec of state.recordings) {
    const row = document.createElement("tr");
    row.dataset.file = rec.file;
    const link = document.createElement("a");
    link.href = rec.url || `/recordings/${encodeURIComponent(rec.file)}`;
    link.textContent = rec.file;
    link.download = rec.file;
    const fileCell = document.createElement("td");
    fileCell.className = "long";
    fileCell.append(link);
    row.append(fileCell);
    const duration = rec.startedAt && rec.stoppedAt
      ? formatDuration((Date.parse(rec.stoppedAt) - Date.parse(rec.startedAt)) / 1000) : "";
    for (const text of [rec.sessionId?.slice(0, 8) || "", formatBytes(rec.size), duration,
      formatTime(rec.stoppedAt)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
  $("#no-recordings").hidden = state.recordings.length > 0;
}

function button(text, label, className, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = text;
  el.className = className;
  el.setAttribute("aria-label", label);
  el.addEventListener("click", onClick);
  return el;
}

function updateEmpty() {
  $("#no-peers").hidden = $("#peers").children.length > 0;
}

// -- errors ---------------------------------------------------------------------------------

function showError(message, request) {
  const list = $("#error-list");
  const item = document.createElement("li");
  const text = document.createElement("span");
  text.textContent = request ? `${request}: ${message}` : message;
  const close = button("×", "Dismiss this error", "dismiss", () => {
    item.remove();
    $("#errors").hidden = list.children.length === 0;
  });
  item.append(text, close);
  list.prepend(item);
  while (list.children.length > 5) list.lastElementChild.remove();
  $("#errors").hidden = false;
}

// For the browser tests and for poking around in the console.
window.demo = { state, send };
