// The page side of the Kurento tutorials hello-world-data-channel and loopback-stats
// (kurento-tutorial-js): an RTCPeerConnection sending the fake camera and receiving it back,
// with the data channel handling of kurento-hello-world-data-channel/js/index.js. The
// kurento-client side runs in Node.js (tutorials/tutorial.js); the test carries offers,
// answers and candidates between the two (kurento-utils' WebRtcPeerSendrecv does the same
// offer/answer/candidate work over the page's own RTCPeerConnection).
//
// window.tutorial:
//   start({dataChannel})  new RTCPeerConnection; with dataChannel, createDataChannel("TestChannel0")
//                         first (the tutorial creates it before kurento-utils adds the camera);
//                         camera and microphone; returns the offer's SDP
//   processAnswer(sdp), addIceCandidate(candidate), takeCandidates() (the page's new ones)
//   send(kind, value)     on the channel: "text" value, "binary" bytes (an array of numbers)
//   closeChannel()        the tutorial's Close button; openChannel(): its Open button
//   state()               channel state and label, received messages, video, errors
//   pixel(id, fx, fy)     the mean [R, G, B] of an 8 x 8 block of what video element `id`
//                         shows, at fractions fx, fy of its width and height

"use strict";

let chanId = 0;
let peerConnection = null;
let channel = null;
const candidates = [];
const page = {received: [], channelStates: [], errors: [], iceStates: []};

function getChannelName() {
  return "TestChannel" + chanId++;
}

function onSendChannelStateChange() {
  if (!channel) return;
  page.channelStates.push(channel.label + ":" + channel.readyState);
}

function onMessage(event) {
  // The tutorial shows event.data in a textarea; binary data is kept as bytes here.
  if (typeof event.data === "string") {
    page.received.push({type: "text", value: event.data});
  } else {
    page.received.push({type: "binary", value: Array.from(new Uint8Array(event.data))});
  }
}

function openChannel() {
  if (channel) {
    page.errors.push("No more than 1 channel supported");
    return;
  }
  channel = peerConnection.createDataChannel(getChannelName(), null);
  channel.binaryType = "arraybuffer";
  channel.onopen = onSendChannelStateChange;
  channel.onclose = onSendChannelStateChange;
  channel.onmessage = onMessage;
}

function closeChannel() {
  if (channel) {
    channel.close();
    channel = null;
  }
}

async function start(options) {
  peerConnection = new RTCPeerConnection({iceServers: []});
  if (options.dataChannel) openChannel();
  peerConnection.onicecandidate = (event) => {
    if (event.candidate && event.candidate.candidate) candidates.push(event.candidate.toJSON());
  };
  peerConnection.oniceconnectionstatechange = () =>
    page.iceStates.push(peerConnection.iceConnectionState);
  peerConnection.ontrack = (event) => {
    const video = document.getElementById("videoOutput");
    if (event.track.kind === "video") video.srcObject = event.streams[0];
  };
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  document.getElementById("videoInput").srcObject = stream;
  for (const track of stream.getTracks()) peerConnection.addTrack(track, stream);
  const offer = await peerConnection.createOffer();
  await peerConnection.setLocalDescription(offer);
  return peerConnection.localDescription.sdp;
}

async function processAnswer(sdp) {
  await peerConnection.setRemoteDescription({type: "answer", sdp: sdp});
}

async function addIceCandidate(candidate) {
  try {
    await peerConnection.addIceCandidate(candidate);
  } catch (error) {
    page.errors.push("addIceCandidate: " + error);
  }
}

function takeCandidates() {
  return candidates.splice(0, candidates.length);
}

function send(kind, value) {
  channel.send(kind === "binary" ? new Uint8Array(value) : value);
}

function state() {
  const video = document.getElementById("videoOutput");
  return {
    channel: channel ? {label: channel.label, id: channel.id, state: channel.readyState} : null,
    received: page.received,
    channelStates: page.channelStates,
    iceStates: page.iceStates,
    errors: page.errors,
    videoWidth: video.videoWidth,
    frames: video.getVideoPlaybackQuality().totalVideoFrames,
  };
}

function pixel(id, fx, fy) {
  const video = document.getElementById(id);
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0);
  const x = Math.floor(fx * canvas.width) - 4, y = Math.floor(fy * canvas.height) - 4;
  const data = context.getImageData(x, y, 8, 8).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
  return sum.map((v) => Math.round(v / 64));
}

window.tutorial = {
  start, processAnswer, addIceCandidate, takeCandidates, send, openChannel, closeChannel, state,
  pixel,
};
