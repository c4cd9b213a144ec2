// A WebRTC peer of the media server, Kurento-tutorial style: the SDP offer and answer and every
// ICE candidate travel over a WebSocket to the test's signaling server (browserkit.py), which
// drives the media server with the Python Kurento client.
//
// Messages, page -> test:  {id: "start", endpoint, sdpOffer}
//                          {id: "onIceCandidate", candidate: {candidate, sdpMid, sdpMLineIndex}}
//          test -> page:   {id: "startResponse", sdpAnswer}
//                          {id: "iceCandidate", candidate: {...}}   (one IceCandidateFound event)
//                          {id: "error", message}
//
// Trickle ICE only: the offer leaves right after setLocalDescription, with any a=candidate line
// removed, so every candidate goes one by one through the socket in both directions.
//
// Timing (performance.now(), ms): offerAt (just before createOffer), offerSentAt, answerAt,
// connectedAt (ICE connected), firstFrameAt (first requestVideoFrameCallback of the remote
// video; falls back to a poll of totalVideoFrames), so offer-to-first-frame is
// firstFrameAt - offerAt.

"use strict";

const state = {
  endpoint: null,
  mode: null,
  offerAt: null,
  offerSentAt: null,
  answerAt: null,
  connectedAt: null,
  firstFrameAt: null,
  rvfcFrames: 0,
  offerCandidateLines: 0,
  answerCandidateLines: 0,
  candidatesSent: [],
  candidatesReceived: [],
  candidateErrors: [],
  iceStates: [],
  connectionStates: [],
  errors: [],
};
let pc = null;
let ws = null;
let localStream = null;

function log(message) {
  state.errors.push(String(message));
}

function candidateLines(sdp) {
  return sdp.split("\r\n").filter((l) => l.startsWith("a=candidate:")).length;
}

function stripCandidates(sdp) {
  return sdp
    .split("\r\n")
    .filter((l) => !l.startsWith("a=candidate:") && l !== "a=end-of-candidates")
    .join("\r\n");
}

function openSocket() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${location.host}/signal`);
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error("signaling socket failed"));
  });
}

function watchFrames(video) {
  // requestVideoFrameCallback fires once per frame presented for composition.
  const onFrame = () => {
    state.rvfcFrames += 1;
    if (state.firstFrameAt === null) state.firstFrameAt = performance.now();
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  // Fallback (and a second witness): the decoder's own frame count.
  const poll = setInterval(() => {
    if (state.firstFrameAt === null && video.getVideoPlaybackQuality().totalVideoFrames > 0) {
      state.firstFrameAt = performance.now();
    }
    if (state.firstFrameAt !== null) clearInterval(poll);
  }, 5);
}

// options: {endpoint, mode: "send" | "recv", audio: bool, iceServers: [], relay: bool,
//           codec: null | "VP8" | "H264" (receive-side preference)}
async function startPeer(options) {
  state.endpoint = options.endpoint;
  state.mode = options.mode;
  ws = await openSocket();
  pc = new RTCPeerConnection({
    iceServers: options.iceServers || [],
    iceTransportPolicy: options.relay ? "relay" : "all",
  });
  let setRemote;
  const remoteReady = new Promise((resolve) => (setRemote = resolve));
  const remote = document.getElementById("remote");

  pc.onicecandidate = (event) => {
    if (!event.candidate || !event.candidate.candidate) return; // end of candidates
    const candidate = event.candidate.toJSON();
    state.candidatesSent.push(candidate.candidate);
    ws.send(JSON.stringify({ id: "onIceCandidate", candidate }));
  };
  pc.onicecandidateerror = (event) => {
    // Reported, not fatal: e.g. a TURN allocation that failed for one transport.
    state.candidateErrors.push(`${event.url} ${event.errorCode} ${event.errorText}`);
  };
  pc.oniceconnectionstatechange = () => {
    state.iceStates.push(pc.iceConnectionState);
    if (pc.iceConnectionState === "connected" && state.connectedAt === null) {
      state.connectedAt = performance.now();
    }
  };
  pc.onconnectionstatechange = () => state.connectionStates.push(pc.connectionState);
  pc.ontrack = (event) => {
    if (event.track.kind === "audio") {
      // Played out (the video element is muted): Chromium measures the energy of what it plays.
      const sound = document.getElementById("sound");
      sound.srcObject = new MediaStream([event.track]);
      sound.play().catch((err) => log(`play audio: ${err}`));
      return;
    }
    remote.srcObject = event.streams[0] || new MediaStream([event.track]);
    remote.play().catch((err) => log(`play: ${err}`));
  };
  if (options.mode === "recv") watchFrames(remote);

  ws.onmessage = async (message) => {
    const data = JSON.parse(message.data);
    try {
      if (data.id === "startResponse") {
        state.answerCandidateLines = candidateLines(data.sdpAnswer);
        await pc.setRemoteDescription({ type: "answer", sdp: data.sdpAnswer });
        state.answerAt = performance.now();
        setRemote();
      } else if (data.id === "iceCandidate") {
        await remoteReady; // addIceCandidate needs the remote description
        await pc.addIceCandidate(data.candidate);
        state.candidatesReceived.push(data.candidate.candidate);
      } else if (data.id === "error") {
        log(`server: ${data.message}`);
      }
    } catch (err) {
      log(`${data.id}: ${err}`);
    }
  };

  if (options.mode === "send") {
    localStream = await navigator.mediaDevices.getUserMedia({
      video: true,
      audio: Boolean(options.audio),
    });
    const local = document.getElementById("local");
    local.srcObject = localStream;
    for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
  } else {
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    if (options.codec) {
      const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
      const wanted = `video/${options.codec}`.toLowerCase();
      const first = codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
      video.setCodecPreferences(first.concat(codecs.filter((c) => !first.includes(c))));
    }
    if (options.audio) pc.addTransceiver("audio", { direction: "recvonly" });
  }

  state.offerAt = performance.now();
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const sdp = pc.localDescription.sdp;
  state.offerCandidateLines = candidateLines(sdp);
  ws.send(JSON.stringify({ id: "start", endpoint: options.endpoint, sdpOffer: stripCandidates(sdp) }));
  state.offerSentAt = performance.now();
}

// A snapshot for the test: timings, counts and what the video elements show.
function peerState() {
  const remote = document.getElementById("remote");
  const local = document.getElementById("local");
  const shown = state.mode === "send" ? local : remote;
  return {
    ...state,
    candidatesSent: [...state.candidatesSent],
    candidatesReceived: [...state.candidatesReceived],
    candidateErrors: [...state.candidateErrors],
    iceConnectionState: pc ? pc.iceConnectionState : "none",
    connectionState: pc ? pc.connectionState : "none",
    videoWidth: shown.videoWidth,
    videoHeight: shown.videoHeight,
    totalVideoFrames: shown.getVideoPlaybackQuality().totalVideoFrames,
  };
}

// The parts of getStats() the tests check: the selected candidate pair (types and addresses)
// and the RTP streams.
async function peerStats() {
  const out = { pair: null, inbound: {}, outbound: {} };
  if (!pc) return out;
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((entry) => byId.set(entry.id, entry));
  report.forEach((entry) => {
    if (entry.type === "transport" && entry.selectedCandidatePairId) {
      const pair = byId.get(entry.selectedCandidatePairId);
      const local = pair && byId.get(pair.localCandidateId);
      const remoteCandidate = pair && byId.get(pair.remoteCandidateId);
      if (pair && local && remoteCandidate) {
        out.pair = {
          state: pair.state,
          localType: local.candidateType,
          localAddress: local.address,
          localProtocol: local.protocol,
          relayProtocol: local.relayProtocol || null,
          remoteType: remoteCandidate.candidateType,
          remoteAddress: remoteCandidate.address,
          bytesReceived: pair.bytesReceived,
          bytesSent: pair.bytesSent,
        };
      }
    } else if (entry.type === "inbound-rtp" || entry.type === "outbound-rtp") {
      const codec = entry.codecId ? byId.get(entry.codecId) : null;
      const side = entry.type === "inbound-rtp" ? out.inbound : out.outbound;
      side[entry.kind] = {
        packets: entry.packetsReceived ?? entry.packetsSent,
        bytes: entry.bytesReceived ?? entry.bytesSent,
        framesDecoded: entry.framesDecoded ?? null,
        framesEncoded: entry.framesEncoded ?? null,
        frameWidth: entry.frameWidth ?? null,
        frameHeight: entry.frameHeight ?? null,
        codec: codec ? codec.mimeType : null,
        // Received audio: energy grows only with sound (silence and comfort noise add ~0).
        totalAudioEnergy: entry.totalAudioEnergy ?? null,
        totalSamplesReceived: entry.totalSamplesReceived ?? null,
      };
    }
  });
  return out;
}

window.startPeer = startPeer;
window.peerState = peerState;
window.peerStats = peerStats;
