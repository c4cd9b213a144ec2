"""The official kurento-client 7.3.0 as a browser script, built once into a cache folder.

The Kurento tutorials load ``kurento-client.js`` from bower, a browserify bundle of the npm
package's ``lib/``; npm's tarball has no such bundle, so :func:`kurento_client_bundle` installs
``js/package.json`` with npm (``--ignore-scripts``) into ``$FLOWENGINE_TEST_CACHE`` (default
``~/.cache/flowengine-tests``), keyed by a hash of that file, and runs browserify on the same
entry point with ``--standalone kurentoClient`` (the bower bundle's global). Without node or
npm it raises :class:`MissingTool`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from browser_servers import MissingTool

MANIFEST = Path(__file__).parent / "js" / "package.json"
INSTALL_TIMEOUT = 600  # seconds


def kurento_client_bundle() -> Path:
    """The path of the bundled ``kurento-client.js`` (built on first use)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise MissingTool("the Kurento JS client tests need Node.js and npm on PATH "
                          "(Debian: apt-get install nodejs npm)")
    manifest = MANIFEST.read_bytes()
    root = Path(os.environ.get("FLOWENGINE_TEST_CACHE") or Path.home() / ".cache"
                / "flowengine-tests")
    target = root / f"kurento-browser-{hashlib.sha256(manifest).hexdigest()[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    bundle = target / "kurento-client.js"
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs build once
        if not bundle.exists():
            (target / "package.json").write_bytes(manifest)
            _run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
                  "--loglevel=error"], target)
            modules = target / "node_modules"
            partial = target / "kurento-client.part.js"
            _run([node, str(modules / "browserify" / "bin" / "cmd.js"),
                  str(modules / "kurento-client" / "lib" / "index.js"),
                  "--standalone", "kurentoClient", "-o", str(partial)], target)
            partial.rename(bundle)
    return bundle


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise MissingTool(f"{command[:2]} in {cwd} took more than {INSTALL_TIMEOUT}s") from exc
    if done.returncode != 0:
        raise MissingTool(f"{' '.join(command[:3])} in {cwd} failed (exit {done.returncode}):"
                          f"\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
