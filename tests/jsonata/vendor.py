"""Vendor the JSONata conformance cases that Node-RED's JSONata passes (tests/jsonata/README.md).

    python tests/jsonata/vendor.py JSONATA_JS_CHECKOUT

Reads ``test/test-suite`` of a jsonata-js checkout, runs every case with the JSONata bundled in
Node-RED 5 (installed as the differential test installs it; ``run_nodered.js``), and writes the
cases it passes to ``cases.jsonl`` (one per line: id, expr, data or dataset, bindings, and
result, undefinedResult or code) and the datasets they use to ``datasets.json``. Cases with a
time or depth limit test jsonata-js's own harness and are left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tools.nodered_diff import nodered  # noqa: E402

KEPT = ("expr", "data", "dataset", "bindings", "result", "undefinedResult", "code", "error")


def main(checkout: Path) -> None:
    suite = checkout / "test" / "test-suite"
    node, package = nodered.install()
    bundled = package.parent / "@node-red" / "util" / "lib" / "jsonata.js"
    ran = subprocess.run([str(node), str(HERE / "run_nodered.js"), str(bundled), str(suite)],
                         capture_output=True, text=True, check=True)
    passed = {case_id for case_id, ok in json.loads(ran.stdout).items() if ok}
    lines, datasets = [], {}
    for group in sorted(p.name for p in (suite / "groups").iterdir() if p.is_dir()):
        for path in sorted((suite / "groups" / group).glob("*.json")):
            spec = json.loads(path.read_text(encoding="utf-8"))
            for index, case in enumerate(spec if isinstance(spec, list) else [spec]):
                case_id = f"{group}/{path.name}#{index}"
                if case_id not in passed:
                    continue
                if "expr-file" in case:
                    case["expr"] = (path.parent / case["expr-file"]).read_text(encoding="utf-8")
                if isinstance(case.get("error"), dict):  # the code is what is compared
                    case["code"] = case.pop("error").get("code")
                kept = {"id": case_id, **{k: case[k] for k in KEPT if k in case}}
                if kept.get("dataset"):
                    name = kept["dataset"]
                    datasets[name] = json.loads(
                        (suite / "datasets" / f"{name}.json").read_text(encoding="utf-8"))
                lines.append(json.dumps(kept, separators=(",", ":")))  # ASCII: lone surrogates
    (HERE / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "datasets.json").write_text(json.dumps(datasets, indent=1,
                                                   ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(lines)} cases that Node-RED's JSONata passes, {len(datasets)} datasets")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
