// A full session of the official kurento-client 7.3.0 against a Kurento-protocol server.
//
// Usage: node session.js ws://127.0.0.1:PORT/kurento
// Run by tests/kurento/test_js_interop.py, with NODE_PATH pointing at the installed client.
//
// Prints one JSON object per line on stdout: {"step": name, ...facts} after each step;
// {"step": "drop"} asks the test to drop the TCP connection (the script then waits for the
// client's own reconnection); the last line is {"step": "done", "results": {...}}. Any failure
// prints {"step": "failed", "error": ...} and exits with code 1.
//
// Generated methods are called with callbacks: without one, kurento-client 7.3.0 swallows
// server errors and resolves with undefined
// (docs/reference/kurento-protocol.md 7.1, "Promise pitfall").

'use strict';

const kurento = require('kurento-client');

const url = process.argv[2];
const STEP_TIMEOUT_MS = 15000;
const results = {};

function report(step, facts) {
  process.stdout.write(JSON.stringify(Object.assign({step: step}, facts || {})) + '\n');
}

function fail(error) {
  const text = error && error.stack ? error.stack : String(error);
  report('failed', {error: text, code: error && error.code});
  process.exit(1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

// Turn a callback-style call into a promise that rejects on error or after a timeout.
function call(what, fn) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(what + ': no answer within ' +
                                                    STEP_TIMEOUT_MS + ' ms')), STEP_TIMEOUT_MS);
    fn((error, value) => {
      clearTimeout(timer);
      if (error) {
        error.message = what + ': ' + error.message;
        reject(error);
      } else {
        resolve(value);
      }
    });
  });
}

// An error expected from the server: resolves with {code, type, message}.
function expectError(what, fn) {
  return call(what, fn).then(
    (value) => { throw new Error(what + ': expected an error, got ' + JSON.stringify(value)); },
    (error) => ({code: error.code, type: error.data && error.data.type, message: error.message}));
}

function waitFor(emitter, event, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ' + what + ' within ' +
                                                    STEP_TIMEOUT_MS + ' ms')), STEP_TIMEOUT_MS);
    emitter.once(event, (value) => { clearTimeout(timer); resolve(value); });
  });
}

// Negotiate offerer -> answerer (both our endpoints), gather on the answerer, and collect its
// candidates through IceCandidateFound events until IceGatheringDone.
async function negotiateAndGather(offerer, answerer, label) {
  const candidates = [];
  answerer.on('IceCandidateFound', (event) => candidates.push(event.candidate));
  const gathered = waitFor(answerer, 'IceGatheringDone', label + ' IceGatheringDone');
  const offer = await call(label + ' generateOffer', (cb) => offerer.generateOffer(cb));
  const answer = await call(label + ' processOffer', (cb) => answerer.processOffer(offer, cb));
  await call(label + ' processAnswer', (cb) => offerer.processAnswer(answer, cb));
  await call(label + ' gatherCandidates', (cb) => answerer.gatherCandidates(cb));
  await gathered;
  return {offer: offer, answer: answer, candidates: candidates};
}

async function main() {
  // The constructor callback runs after describe manager_ServerManager and getInfo (the
  // module check, strict mode); awaiting the client itself only waits for the socket.
  let client;
  await call('connect', (cb) => {
    client = kurento(url, {failAfter: 20, request_timeout: STEP_TIMEOUT_MS}, cb);
    // The npm reconnect-ws stack re-emits socket errors on client._re: without a listener the
    // process would crash at the first dropped connection (docs/reference/kurento-protocol.md 7.1).
    client._re.on('error', (error) => report('socket-error', {error: String(error)}));
  });
  results.sessionId = client.sessionId;
  report('connected', {sessionId: client.sessionId});

  const info = await call('getInfo', (cb) => client.getServerManager((error, manager) => {
    if (error) return cb(error);
    manager.getInfo(cb);
  }));
  results.modules = info.modules.map((m) => m.name);

  // create
  const pipeline = await call('create MediaPipeline', (cb) => client.create('MediaPipeline', cb));
  const ep1 = await call('create ep1', (cb) => pipeline.create('WebRtcEndpoint', cb));
  const ep2 = await call('create ep2', (cb) => pipeline.create('WebRtcEndpoint', cb));
  results.pipelineId = pipeline.id;
  results.endpointId = ep1.id;
  report('created', {pipeline: pipeline.id, ep1: ep1.id, ep2: ep2.id});

  // invoke: a property setter and getter
  await call('setName', (cb) => ep1.setName('js-ep1', cb));
  results.name = await call('getName', (cb) => ep1.getName(cb));
  await call('setStunServerAddress', (cb) => ep1.setStunServerAddress('127.0.0.1', cb));
  results.stunServerAddress = await call('getStunServerAddress',
                                         (cb) => ep1.getStunServerAddress(cb));
  results.mediaState = await call('getMediaState', (cb) => ep1.getMediaState(cb));
  report('invoked', {name: results.name});

  // subscribe / events
  const first = await negotiateAndGather(ep1, ep2, 'first');
  results.answerIsSdp = first.answer.startsWith('v=0');
  results.candidates = first.candidates.map((c) => ({candidate: c.candidate, sdpMid: c.sdpMid,
                                                     sdpMLineIndex: c.sdpMLineIndex}));
  report('events', {candidates: first.candidates.length});

  // connect
  await call('connect', (cb) => ep1.connect(ep2, 'VIDEO', cb));
  const sources = await call('getSourceConnections', (cb) => ep2.getSourceConnections(cb));
  results.sourceConnections = sources.map((c) => ({
    source: typeof c.source === 'string' ? c.source : c.source.id,
    sink: typeof c.sink === 'string' ? c.sink : c.sink.id,
    type: c.type}));
  report('connected-elements', {sources: sources.length});

  // getStats
  const stats = await call('getStats', (cb) => ep1.getStats(cb));
  results.statsTypes = Object.keys(stats).map((k) => stats[k].type);
  report('stats', {count: Object.keys(stats).length});

  // errors keep their Kurento codes (an unknown type would be refused by the JS client itself,
  // before anything is sent)
  results.secondOffer = await expectError('second processOffer',
                                          (cb) => ep2.processOffer(first.offer, cb));

  // reconnect: the test drops the TCP connection; the client reconnects on its own and sends
  // connect {sessionId}. Events of an endpoint subscribed before the drop must reach the new
  // socket.
  const ep3 = await call('create ep3', (cb) => pipeline.create('WebRtcEndpoint', cb));
  const ep4 = await call('create ep4', (cb) => pipeline.create('WebRtcEndpoint', cb));
  const reconnected = waitFor(client, 'reconnected', 'reconnected event');
  report('drop');
  results.sameSession = await reconnected;
  results.sessionIdAfterReconnect = client.sessionId;
  results.nameAfterReconnect = await call('getName after reconnect', (cb) => ep1.getName(cb));
  const second = await negotiateAndGather(ep3, ep4, 'after reconnect');
  results.candidatesAfterReconnect = second.candidates.length;
  report('reconnected', {sameSession: results.sameSession});

  // release (cascades to the pipeline's elements)
  await call('release', (cb) => pipeline.release(cb));
  results.afterRelease = await expectError('describe released endpoint',
                                           (cb) => client.getMediaobjectById(ep1.id, cb));
  report('released');

  client.close();
  report('done', {results: results});
  process.exit(0);
}

main().catch(fail);
