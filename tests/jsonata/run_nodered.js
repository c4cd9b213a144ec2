// Runs the jsonata-js test suite as its test/run-test-suite.js does, with the JSONata bundled
// in Node-RED: node run_nodered.js JSONATA_JS SUITE_DIR prints {"group/file.json#i": passed},
// null for the cases that test jsonata-js's time and depth limits (tests/jsonata/vendor.py).
const fs = require("fs"), path = require("path"), assert = require("assert");
const [,, jsonataPath, suite] = process.argv;
const jsonata = require(jsonataPath);
const datasets = {};
for (const n of fs.readdirSync(path.join(suite, "datasets")))
    datasets[n.replace(".json", "")] = JSON.parse(fs.readFileSync(path.join(suite, "datasets", n)));
function dataOf(tc) {
    if ("data" in tc) return tc.data;
    if (tc.dataset === null || tc.dataset === undefined) return undefined;
    return datasets[tc.dataset];
}
(async () => {
    const out = {};
    const groups = fs.readdirSync(path.join(suite, "groups")).sort();
    for (const g of groups) {
        for (const f of fs.readdirSync(path.join(suite, "groups", g)).filter(n => n.endsWith(".json")).sort()) {
            const spec = JSON.parse(fs.readFileSync(path.join(suite, "groups", g, f)));
            const cases = Array.isArray(spec) ? spec : [spec];
            for (let i = 0; i < cases.length; i++) {
                const tc = cases[i], id = `${g}/${f}#${i}`;
                if (tc["expr-file"]) tc.expr = fs.readFileSync(path.join(suite, "groups", g, tc["expr-file"])).toString();
                if ("timelimit" in tc || "depth" in tc) { out[id] = null; continue; }
                let ok = false;
                try {
                    const expr = jsonata(tc.expr);
                    try {
                        const r = await expr.evaluate(dataOf(tc), tc.bindings);
                        if ("undefinedResult" in tc) ok = r === undefined;
                        else if ("result" in tc) { assert.deepStrictEqual(JSON.parse(JSON.stringify(r === undefined ? null : r)), tc.result); ok = r !== undefined || tc.result === null; }
                    } catch (e) {
                        ok = ("code" in tc && e.code === tc.code) || ("error" in tc && e.code === tc.error.code);
                    }
                } catch (e) {
                    ok = "code" in tc && e.code === tc.code;
                }
                out[id] = ok;
            }
        }
    }
    process.stdout.write(JSON.stringify(out));
})();
