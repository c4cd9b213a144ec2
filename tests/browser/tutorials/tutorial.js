// The kurento-client side of two official Kurento tutorials (kurento-tutorial-js), run in
// Node.js with the official kurento-client 7.3.0; the page side runs in headless Chromium
// (pages/tutorial.js) and tests/browser/test_browser_tutorials.py relays between the two.
//
// Usage: node tutorial.js MODE ws://127.0.0.1:PORT/kurento   (NODE_PATH: the installed client)
//
// MODE
//   hello-world-data-channel  kurento-hello-world-data-channel/js/index.js, onOffer():
//                             a pipeline, one WebRtcEndpoint {useDataChannels: true},
//                             processOffer, gatherCandidates, connect(webRtc) (loopback).
//   data-channel-relay        the same for two pages "a" and "b", with a.connect(b) instead
//                             of the loopbacks: what page a sends reaches page b.
//   loopback-stats            kurento-loopback-stats/js/index.js: pipeline.setLatencyStats(true),
//                             a WebRtcEndpoint, processOffer, gatherCandidates, connect(webRtc),
//                             and printStats() every second once MediaStateChanged is CONNECTED.
//   magic-mirror              kurento-magic-mirror/js/index.js: a WebRtcEndpoint, processOffer,
//                             gatherCandidates, a FaceOverlayFilter with
//                             setOverlayedImage(hat_uri, -0.35, -1.2, 1.6, 1.6), then
//                             client.connect(webRtcEp, filter) and client.connect(filter, webRtcEp).
//                             hat_uri: the environment variable HAT_URI.
//
// stdin, one JSON object per line:  {cmd: "offer", peer, sdp}
//                                   {cmd: "candidate", peer, candidate}   (an RTCIceCandidate)
//                                   {cmd: "stats", peer, mediaType}
//                                   {cmd: "stop"}                          (pipeline.release())
// stdout, one JSON object per line: {event: "answer", peer, sdp}
//                                   {event: "candidate", peer, candidate} (IceCandidateFound)
//                                   {event: "DataChannelOpened" | "DataChannelClosed", peer,
//                                    channelId}
//                                   {event: "stats", peer, stats}
//                                   {event: "e2eLatency", peer, text, text7, stats}
//                                   {event: "stopped"}, {event: "failed", error}

'use strict';

const kurentoClient = require('kurento-client');
const readline = require('readline');

const mode = process.argv[2];
const wsUri = process.argv[3];

function emit(event, facts) {
  process.stdout.write(JSON.stringify(Object.assign({event: event}, facts || {})) + '\n');
}

function onError(error) {
  if (error) {
    emit('failed', {error: error && error.stack ? error.stack : String(error)});
    process.exit(1);
  }
}

process.on('uncaughtException', onError);
process.on('unhandledRejection', onError);

let client = null;
let pipeline = null;
let pipelineReady = null;        // one pipeline, whichever offer comes first
const endpoints = {};            // peer name -> WebRtcEndpoint
const pendingCandidates = {};    // peer name -> candidates that came before the endpoint

function getPipeline() {
  if (pipelineReady) return pipelineReady;
  pipelineReady = new Promise((resolve) => {
    kurentoClient(wsUri, function(error, _client) {
      if (error) return onError(error);
      client = _client;
      client.create('MediaPipeline', function(error, _pipeline) {
        if (error) return onError(error);
        pipeline = _pipeline;
        if (mode === 'loopback-stats') {
          // Activate the ability to gather end-to-end latency stats
          pipeline.setLatencyStats(true, function(error) {
            if (error) return onError(error);
          });
        }
        resolve(pipeline);
      });
    });
  });
  return pipelineReady;
}

// The tutorials' setIceCandidateCallbacks, with the page behind stdin/stdout.
function setIceCandidateCallbacks(peer, webRtcEp) {
  webRtcEp.on('IceCandidateFound', function(event) {
    emit('candidate', {peer: peer, candidate: event.candidate});
  });
  for (const candidate of pendingCandidates[peer] || []) addCandidate(peer, candidate);
  delete pendingCandidates[peer];
}

function addCandidate(peer, candidate) {
  const webRtcEp = endpoints[peer];
  if (!webRtcEp) {
    (pendingCandidates[peer] = pendingCandidates[peer] || []).push(candidate);
    return;
  }
  candidate = kurentoClient.getComplexType('IceCandidate')(candidate);
  webRtcEp.addIceCandidate(candidate, onError);
}

function dataChannelEvents(peer, webRtc) {
  for (const type of ['DataChannelOpened', 'DataChannelClosed']) {
    webRtc.on(type, function(event) {
      emit(type, {peer: peer, channelId: event.channelId});
    });
  }
}

function onOffer(peer, sdpOffer) {
  getPipeline().then(function(pipeline) {
    const params = mode === 'loopback-stats' || mode === 'magic-mirror' ? {} :
      {useDataChannels: true};
    pipeline.create('WebRtcEndpoint', params, function(error, webRtc) {
      if (error) return onError(error);
      endpoints[peer] = webRtc;
      if (params.useDataChannels) dataChannelEvents(peer, webRtc);
      setIceCandidateCallbacks(peer, webRtc);

      webRtc.processOffer(sdpOffer, function(error, sdpAnswer) {
        if (error) return onError(error);
        webRtc.gatherCandidates(onError);
        emit('answer', {peer: peer, sdp: sdpAnswer});
      });

      if (mode === 'magic-mirror') {
        pipeline.create('FaceOverlayFilter', function(error, filter) {
          if (error) return onError(error);
          filter.setOverlayedImage(process.env.HAT_URI, -0.35, -1.2, 1.6, 1.6, function(error) {
            if (error) return onError(error);
            emit('overlay');
          });
          client.connect(webRtc, filter, function(error) {
            if (error) return onError(error);
            client.connect(filter, webRtc, function(error) {
              if (error) return onError(error);
              emit('connected', {source: peer, sink: peer, through: 'FaceOverlayFilter'});
            });
          });
        });
        return;
      }
      if (mode === 'data-channel-relay') {
        if (endpoints.a && endpoints.b) {
          endpoints.a.connect(endpoints.b, function(error) {
            if (error) return onError(error);
            emit('connected', {source: 'a', sink: 'b'});
          });
        }
        return;
      }
      webRtc.connect(webRtc, function(error) {
        if (error) return onError(error);
        emit('connected', {source: peer, sink: peer});
        if (mode === 'loopback-stats') {
          webRtc.on('MediaStateChanged', function(event) {
            if (event.newState == 'CONNECTED') activateStatsTimeout(peer);
          });
        }
      });
    });
  });
}

function activateStatsTimeout(peer) {
  setTimeout(function() {
    if (!pipeline) return;
    printStats(peer);
    activateStatsTimeout(peer);
  }, 1000);
}

// The tutorial's getMediaElementStats.
function getMediaElementStats(mediaElement, statsType, mediaType, callback) {
  if (!mediaType) mediaType = 'VIDEO';
  mediaElement.getStats(mediaType, function(error, statsMap) {
    if (error) return callback(error);
    for (const key in statsMap) {
      if (!statsMap.hasOwnProperty(key)) continue;
      const stats = statsMap[key];
      if (stats.type != statsType) continue;
      return callback(null, stats);
    }
    return callback('Could not find ' + statsType + ':' + mediaType + ' stats');
  });
}

function printStats(peer) {
  getMediaElementStats(endpoints[peer], 'endpoint', 'VIDEO', function(error, stats) {
    if (error) return onError(error);
    emit('e2eLatency', {
      peer: peer,
      // kurento-tutorial-js (6.x, the repository the tutorials are published from):
      text: stats.videoE2ELatency / 1000000 + ' milliseconds',
      // The same line in Kurento 7's monorepo (tutorials/javascript-browser/loopback-stats):
      text7: stats.E2ELatency[1] / 1000000 + ' milliseconds',
      stats: stats,
    });
  });
}

function onCommand(line) {
  const message = JSON.parse(line);
  if (message.cmd === 'offer') {
    onOffer(message.peer, message.sdp);
  } else if (message.cmd === 'candidate') {
    addCandidate(message.peer, message.candidate);
  } else if (message.cmd === 'stats') {
    endpoints[message.peer].getStats(message.mediaType, function(error, stats) {
      if (error) return onError(error);
      emit('stats', {peer: message.peer, stats: stats});
    });
  } else if (message.cmd === 'stop') {
    const done = () => {
      emit('stopped');
      if (client) client.close();
      process.exit(0);
    };
    if (pipeline) pipeline.release(done); else done();
  }
}

readline.createInterface({input: process.stdin}).on('line', onCommand);
