// The calls of Kurento's JS recorder tutorial (kurento-tutorial-js, kurento-recorder/js/index.js),
// in its order and with its arguments, through the official kurento-client (window.kurentoClient).
// Only kurento-utils' WebRtcPeer is replaced by a plain RTCPeerConnection (same offer: the fake
// camera and microphone sendrecv to record, receive-only to play), and the buttons by functions
// the test calls. As in the tutorial, "stop" calls recorder.stop() and pipeline.release()
// without waiting, and "play" may follow at once.

const tutorial = {
  errors: [],
  log: [],
  recordingAt: null,
  stoppedAt: null,
  playAt: null,
  firstFrameAt: null,
  frames: 0,
  endOfStreamAt: null,
};
let recordPeer = null;
let playPeer = null;
let onStop = null;

function onError(error) {
  if (error) tutorial.errors.push(String(error && (error.message || error)));
}

function setIceCandidateCallbacks(peer, webRtcEp, onerror) {
  peer.onicecandidate = (event) => {
    if (!event.candidate || !event.candidate.candidate) return;
    const candidate = kurentoClient.getComplexType("IceCandidate")(event.candidate.toJSON());
    webRtcEp.addIceCandidate(candidate, onerror);
  };
  let remoteSet;
  const remoteReady = new Promise((resolve) => (remoteSet = resolve));
  webRtcEp.on("IceCandidateFound", (event) => {
    remoteReady.then(() => peer.addIceCandidate(event.candidate)).catch(onerror);
  });
  return remoteSet;
}

// The "Start" button: record the fake camera and microphone to args.file_uri.
async function startRecording(args) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  document.getElementById("videoInput").srcObject = stream;
  recordPeer = new RTCPeerConnection({ iceServers: [] });
  for (const track of stream.getTracks()) recordPeer.addTrack(track, stream);
  const offer = await recordPeer.createOffer();
  await recordPeer.setLocalDescription(offer);
  return new Promise((resolve, reject) => {
    const fail = (error) => { onError(error); reject(String(error)); };
    kurentoClient(args.ws_uri, function (error, client) {
      if (error) return fail(error);
      client.create("MediaPipeline", function (error, pipeline) {
        if (error) return fail(error);
        const elements = [
          { type: "RecorderEndpoint", params: { uri: args.file_uri } },
          { type: "WebRtcEndpoint", params: {} },
        ];
        pipeline.create(elements, function (error, elements) {
          if (error) return fail(error);
          const recorder = elements[0];
          const webRtc = elements[1];
          const remoteSet = setIceCandidateCallbacks(recordPeer, webRtc, onError);
          webRtc.processOffer(offer.sdp, function (error, answer) {
            if (error) return fail(error);
            webRtc.gatherCandidates(onError);
            recordPeer.setRemoteDescription({ type: "answer", sdp: answer })
              .then(remoteSet, onError);
          });
          client.connect(webRtc, webRtc, function (error) {
            if (error) return fail(error);
            client.connect(webRtc, recorder, function (error) {
              if (error) return fail(error);
              recorder.record(function (error) {
                if (error) return fail(error);
                tutorial.recordingAt = performance.now();
                onStop = function () {
                  recorder.stop();
                  pipeline.release();
                  recordPeer.close();
                  tutorial.stoppedAt = performance.now();
                };
                resolve();
              });
            });
          });
        });
      });
    });
  });
}

// The "Stop" button.
function stopRecording() {
  onStop();
}

// The "Play" button: play args.file_uri back through a PlayerEndpoint.
async function startPlaying(args) {
  const video = document.getElementById("videoOutput");
  playPeer = new RTCPeerConnection({ iceServers: [] });
  playPeer.addTransceiver("video", { direction: "recvonly" });
  playPeer.addTransceiver("audio", { direction: "recvonly" });
  playPeer.ontrack = (event) => {
    if (event.track.kind !== "video") return;
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(onError);
  };
  const countFrame = () => {
    if (tutorial.firstFrameAt === null) tutorial.firstFrameAt = performance.now();
    tutorial.frames += 1;
    video.requestVideoFrameCallback(countFrame);
  };
  video.requestVideoFrameCallback(countFrame);
  const offer = await playPeer.createOffer();
  await playPeer.setLocalDescription(offer);
  tutorial.playAt = performance.now();
  kurentoClient(args.ws_uri, function (error, client) {
    if (error) return onError(error);
    client.create("MediaPipeline", function (error, pipeline) {
      if (error) return onError(error);
      pipeline.create("WebRtcEndpoint", function (error, webRtc) {
        if (error) return onError(error);
        const remoteSet = setIceCandidateCallbacks(playPeer, webRtc, onError);
        webRtc.processOffer(offer.sdp, function (error, answer) {
          if (error) return onError(error);
          webRtc.gatherCandidates(onError);
          playPeer.setRemoteDescription({ type: "answer", sdp: answer })
            .then(remoteSet, onError);
        });
        const options = { uri: args.file_uri };
        // Not in the tutorial: the player tests also play with KMS's useEncodedMedia.
        if (args.use_encoded_media !== undefined) options.useEncodedMedia = args.use_encoded_media;
        pipeline.create("PlayerEndpoint", options, function (error, player) {
          if (error) return onError(error);
          player.on("EndOfStream", function (event) {
            tutorial.endOfStreamAt = performance.now();
            pipeline.release();
            playPeer.close();
          });
          player.connect(webRtc, function (error) {
            if (error) return onError(error);
            player.play(function (error) {
              if (error) return onError(error);
            });
          });
        });
      });
    });
  });
}

// A snapshot for the test, with the audio RTP the playing page received.
async function tutorialState() {
  let audioPackets = 0;
  if (playPeer && playPeer.connectionState !== "closed") {
    const report = await playPeer.getStats();
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp" && entry.kind === "audio") {
        audioPackets += entry.packetsReceived || 0;
      }
    });
    tutorial.audioPackets = Math.max(tutorial.audioPackets || 0, audioPackets);
  }
  return { ...tutorial, errors: [...tutorial.errors] };
}
