// Runs flows on the real Node-RED (embedded in this process) and records what the differential
// test compares: every message a debug or complete node receives, and every status a node
// shows. Usage (the Python side, tools/nodered_diff/nodered.py, writes the plan):
//
//   node nodered_driver.js PLAN.json OUT.json
//
// PLAN: {node_red: "<dir of the node-red package>", flows: "<flows.json>", userdir, port,
//        groups: [{name, triggers: [inject ids, in order]}], start_delay, gap, quiet, max_time}
// OUT:  {version, events: [{t, kind: "receive"|"status", id, type, msg|status}], log: [...]}
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const outFile = process.argv[3];
const from = (name) => require(require.resolve(name, { paths: [plan.node_red] }));
const RED = require(plan.node_red);
const express = from("express");
const utilEvents = from("@node-red/util").events;

const log = [];
const events = [];
const t0 = Date.now();
let lastEvent = Date.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- encoding what is observed (the Python side encodes flowengine's messages the same way) ----

function encodeRequest(req) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers || {})) {
        if (name === "content-type" || name.startsWith("x-")) headers[name] = value;
    }
    return {
        __request__: {
            method: req.method, url: req.url, originalUrl: req.originalUrl,
            baseUrl: req.baseUrl, path: req.path, hostname: req.hostname, ip: req.ip,
            protocol: req.protocol, params: encode(req.params), query: encode(req.query),
            body: encode(req.body), cookies: encode(req.cookies || {}), headers,
            route: req.route ? req.route.path : null,
        },
    };
}

function encode(value, seen = new Set(), key = null) {
    if (value === undefined) return { __undefined__: true };
    if (value === null || typeof value === "string" || typeof value === "boolean") return value;
    if (typeof value === "number") {
        return Number.isFinite(value) ? value : { __number__: String(value) };
    }
    if (typeof value === "bigint") return { __number__: value.toString() };
    if (typeof value === "function") return { __function__: true };
    if (typeof value !== "object") return String(value);
    if (Buffer.isBuffer(value)) return { __buffer__: value.toString("hex") };
    if (value instanceof Date) return { __date__: value.toISOString() };
    if (value instanceof Error) return { __error__: { name: value.name, message: value.message } };
    if (key === "req" && value.socket) return encodeRequest(value);
    if (key === "res" && value._res) return { __response__: true };
    if (seen.has(value)) return { __circular__: true };
    seen.add(value);
    let result;
    if (Array.isArray(value)) {
        result = value.map((v) => encode(v, seen));
    } else {
        result = {};
        for (const k of Object.keys(value)) {
            if (value[k] !== undefined) result[k] = encode(value[k], seen, k);
        }
    }
    seen.delete(value);
    return result;
}

function record(kind, node, data) {
    lastEvent = Date.now();
    events.push({ t: Date.now() - t0, kind, id: node.id, type: node.type, ...data });
}

// -- the observers ---------------------------------------------------------------------------

RED.hooks.add("onReceive.nodereddiff", (event) => {
    const node = event.destination.node;
    if (node && (node.type === "debug" || node.type === "complete")) {
        try {
            record("receive", node, { msg: encode(event.msg) });
        } catch (err) {
            record("receive", node, { msg: { __unencodable__: String(err) } });
        }
    }
});

// The editor translates a status text that is a message key ("httpin.status.requesting"):
// compare what a user sees.
const i18n = from("@node-red/util").i18n;
function translated(status) {
    if (typeof status.text === "string" && /^[a-z-]+(\.[a-z-]+)+$/i.test(status.text)) {
        const text = i18n._("node-red:" + status.text);
        if (text && text !== "node-red:" + status.text && text !== status.text) {
            return { ...status, text };
        }
    }
    return status;
}

utilEvents.on("node-status", (event) => {
    if (!event.status) return; // a removed node's status being cleared at stop
    const node = RED.nodes.getNode(event.id) || { id: event.id, type: "" };
    record("status", node, { status: encode(translated(event.status)) });
});

// -- Node-RED, embedded ------------------------------------------------------------------------

const settings = {
    userDir: plan.userdir,
    lang: "en-US", // not the machine locale: "C.UTF-8" would leave messages untranslated
    flowFile: path.resolve(plan.flows),
    flowFilePretty: true,
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: "/",
    disableEditor: true,
    uiHost: "127.0.0.1",
    uiPort: plan.port,
    functionGlobalContext: {},
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false },
    editorTheme: { projects: { enabled: false }, tours: false },
    logging: {
        console: { level: "off" },
        collect: {
            level: "warn",
            metrics: false,
            audit: false,
            handler: () => (entry) => {
                log.push({ t: Date.now() - t0, level: entry.level, id: entry.id, type: entry.type,
                           msg: String(entry.msg) });
            },
        },
    },
};

const app = express();
const server = http.createServer(app);
RED.init(server, settings);
app.use(settings.httpNodeRoot, RED.httpNode);

async function drive(group) {
    await sleep(plan.start_delay * 1000);
    for (const id of group.triggers) {
        const node = RED.nodes.getNode(id);
        if (node) {
            node.receive();
        } else {
            log.push({ t: Date.now() - t0, level: 0, id, msg: "inject node not running" });
        }
        await sleep(plan.gap * 1000);
    }
}

async function main() {
    const started = new Promise((resolve) => utilEvents.once("flows:started", resolve));
    await new Promise((resolve) => server.listen(plan.port, "127.0.0.1", resolve));
    await RED.start();
    await started;
    const begin = Date.now();
    await Promise.all(plan.groups.map(drive));
    while (Date.now() - lastEvent < plan.quiet * 1000 && Date.now() - begin < plan.max_time * 1000) {
        await sleep(50);
    }
    const version = RED.version;
    fs.writeFileSync(outFile, JSON.stringify({ version, events, log }));
    await RED.stop();
    server.close();
    process.exit(0);
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
});
