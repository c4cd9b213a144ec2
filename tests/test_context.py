"""Context: scopes, key semantics, stores, persistence (docs/reference/nodered-runtime.md §3, case
FN-16 in docs/reference/nodered-cases.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from flowengine.context import Context, ContextManager, FileStore, MemoryStore
from flowengine.context.layout import relpath_to_scope, scope_to_relpath
from flowengine.paths import MISSING


def file_config(directory: Path, flush_interval: float = 30.0, default: str = "memory") -> dict:
    return {
        "default": default,
        "stores": {
            "file": {"module": "file", "dir": str(directory), "flush_interval": flush_interval}
        },
    }


@pytest.fixture
def manager() -> ContextManager:
    return ContextManager()


@pytest.fixture
async def file_manager(tmp_path: Path):
    mgr = ContextManager(file_config(tmp_path / "ctx"))
    await mgr.start()
    yield mgr
    await mgr.stop()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- keys


def test_fn16_node_context_set_and_global_keys(manager: ContextManager) -> None:
    # FN-16: context.set('count','0') -> node context count "0";
    # global.set("count","0"); global.keys() -> ['count']
    node = manager.node_context("fn", "main")
    node.set("count", "0")
    assert node.get("count") == "0"
    manager.global_context().set("count", "0")
    assert manager.global_context().keys() == ["count"]


def test_nested_keys_create_intermediates(manager: ContextManager) -> None:
    ctx = manager.flow_context("main")
    ctx.set("a.b.c", 1)
    assert ctx.get("a") == {"b": {"c": 1}}
    assert ctx.get("a.b.c") == 1
    ctx.set("arr[1]", "x")
    assert ctx.get("arr") == [None, "x"]
    assert ctx.get('a["b"].c') == 1
    ctx.set('q["b c"]', 2)
    assert ctx.get("q") == {"b c": 2}


def test_missing_keys_read_none_or_default(manager: ContextManager) -> None:
    ctx = manager.flow_context("main")
    assert ctx.get("nope") is None
    assert ctx.get("nope", default=7) == 7
    assert ctx.get("a.b.c") is None  # child of a missing parent: not an error
    ctx.set("s", "text")
    assert ctx.get("s.x", default="d") == "d"
    ctx.set("s.x", 1)  # cannot set under a string: nothing happens
    assert ctx.get("s") == "text"


def test_stored_none_is_not_default(manager: ContextManager) -> None:
    ctx = manager.flow_context("main")
    ctx.set(["a", "b"], [1])  # b padded with None: present, value None
    assert ctx.get("b", default=5) is None
    keys = ctx.keys()
    assert "b" in keys


def test_set_none_deletes_and_delete(manager: ContextManager) -> None:
    ctx = manager.node_context("n", "main")
    ctx.set("a", 1)
    ctx.set("b.c", 2)
    ctx.set("a", None)
    assert ctx.keys() == ["b"]
    ctx.delete("b.c")
    assert ctx.get("b") == {}
    ctx.delete("b")
    ctx.delete("never-there")
    assert ctx.keys() == []


def test_msg_prefix_is_an_ordinary_segment(manager: ContextManager) -> None:
    ctx = manager.flow_context("main")
    ctx.set("msg.a", 1)
    assert ctx.get("msg") == {"a": 1}
    assert ctx.get("a") is None


def test_multiple_keys_get_and_set(manager: ContextManager) -> None:
    ctx = manager.node_context("n", "main")
    ctx.set(["count", "count2"], ["0", "1"])  # FN-16 multiple keys
    assert ctx.get(["count", "count2", "missing"]) == ["0", "1", None]
    assert ctx.get(["missing", "count"], default=0) == [0, "0"]

    ctx.set(["k1", "k2", "k3"], ["v1"])  # missing values padded with None
    assert ctx.get(["k1", "k2", "k3"]) == ["v1", None, None]
    assert {"k1", "k2", "k3"} <= set(ctx.keys())

    ctx.set(["s1", "s2"], "scalar")  # non-list value: first key only
    assert ctx.get(["s1", "s2"]) == ["scalar", None]

    ctx.set(["e1"], [1, 2, 3])  # extra values ignored
    assert ctx.get("e1") == 1
    keys = ctx.keys()
    assert "e2" not in keys

    ctx.set(("t1", "t2"), (1, 2))  # tuples work like lists
    assert ctx.get(("t1", "t2")) == [1, 2]

    ctx.set(["k1", "k2"], [None, 5])  # an explicit None deletes, like undefined
    keys = ctx.keys()
    assert "k1" not in keys
    assert ctx.get("k2") == 5

    ctx.delete(["k2", "k3"])
    keys = ctx.keys()
    assert "k2" not in keys and "k3" not in keys


@pytest.mark.parametrize("key", ["", 5, None, [], ["a", 3], ["a", ""], "#:(file)::"])
def test_invalid_keys(manager: ContextManager, key: object) -> None:
    ctx = manager.node_context("n", "main")
    with pytest.raises(ValueError, match="Invalid context key"):
        ctx.get(key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid context key"):
        ctx.set(key, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid context key"):
        ctx.delete(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["a..b", ".a", "a b", "a[b]", "a[msg.topic]"])
def test_malformed_expressions_are_value_errors(manager: ContextManager, key: str) -> None:
    ctx = manager.flow_context("main")
    with pytest.raises(ValueError):
        ctx.get(key)
    with pytest.raises(ValueError):
        ctx.set(key, 1)


def test_memory_store_keeps_references(manager: ContextManager) -> None:
    ctx = manager.flow_context("main")
    obj = {"n": 1}
    ctx.set("obj", obj)
    obj["n"] = 2  # mutate after set
    assert ctx.get("obj")["n"] == 2
    got = ctx.get("obj")
    assert got is obj
    got["extra"] = True  # mutate what get returned
    assert ctx.get("obj.extra") is True

    def helper(x: int) -> int:
        return x + 1

    ctx.set("helper", helper)  # functions stored in context stay callable
    assert ctx.get("helper")(1) == 2


def test_scopes_are_separate(manager: ContextManager) -> None:
    a = manager.node_context("a", "main")
    b = manager.node_context("b", "main")
    a_other = manager.node_context("a", "other")
    flow = manager.flow_context("main")
    a.set("x", 1)
    assert b.get("x") is None
    assert a_other.get("x") is None
    assert flow.get("x") is None
    assert manager.global_context().get("x") is None
    assert a.scope == "a:main" and flow.scope == "main"
    assert manager.node_context("a", "main") is a  # cached


def test_parent_of_flow_is_global(manager: ContextManager) -> None:
    flow = manager.flow_context("main")
    glob = manager.global_context()
    glob.set("gk", "global value")
    assert flow.get("$parent.gk") == "global value"
    flow.set("$parent.fromflow.deep", 1)
    assert glob.get("fromflow") == {"deep": 1}
    assert flow.keys() == []
    flow.delete("$parent.gk")
    assert glob.get("gk") is None
    # Past the root: reads are missing, writes do nothing.
    assert flow.get("$parent.$parent.x", default="d") == "d"
    flow.set("$parent.$parent.x", 1)
    assert flow.get("$parent") is None
    node = manager.node_context("n", "main")
    node.set("$parent.y", 1)
    assert node.get("$parent.y") is None and node.keys() == []
    assert glob.get("$parent.gk") is None


def test_parent_of_subflow_instance_is_its_flow(manager: ContextManager) -> None:
    manager.flow_context("main").set("fk", "flow")
    manager.global_context().set("gk", "global")
    sub = manager.flow_context("main-sub1", parent="main")
    assert sub.get("$parent.fk") == "flow"
    assert sub.get("$parent.$parent.gk") == "global"


def test_global_seed(tmp_path: Path) -> None:
    seed = {"os_name": "posix", "cfg": {"port": 1880}}
    mgr = ContextManager(global_seed=seed)
    glob = mgr.global_context()
    assert glob.get("os_name") == "posix"
    assert glob.get("cfg.port") == 1880
    assert glob.get(["os_name", "nope"]) == ["posix", None]
    assert glob.keys() == []  # seed keys are not listed
    glob.set("os_name", "override")
    assert glob.get("os_name") == "override"
    assert mgr.flow_context("main").get("$parent.cfg.port") == 1880
    assert mgr.flow_context("main").get("os_name") is None  # only global is seeded


# --------------------------------------------------------------------------- stores


async def test_store_named_in_key_or_argument(file_manager: ContextManager) -> None:
    ctx = file_manager.node_context("n", "main")
    ctx.set("#:(file)::counter", 1)
    assert ctx.get("counter") is None  # not in the default (memory) store
    assert ctx.get("#:(file)::counter") == 1
    assert ctx.get("counter", "file") == 1
    assert ctx.keys("file") == ["counter"]
    assert ctx.keys() == []
    ctx.set("other", 2, store="file")
    assert ctx.get(["counter", "other"], store="file") == [1, 2]
    # The store argument wins over the name in the key, as in Node-RED.
    ctx.set("#:(file)::where", "memory", store="memory")
    assert ctx.get("where") == "memory"
    assert ctx.get("where", store="file") is None
    ctx.delete("#:(file)::counter")
    assert ctx.keys("file") == ["other"]
    # The prefix and $parent combine.
    flow = file_manager.flow_context("main")
    flow.set("#:(file)::$parent.g", 3)
    assert file_manager.global_context().get("g", "file") == 3


def test_unknown_store_falls_back_with_one_warning(
    manager: ContextManager, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = manager.node_context("n", "main")
    with caplog.at_level(logging.WARNING, logger="flowengine.context"):
        ctx.set("#:(nosuch)::k", 1)
        ctx.set("k2", 2, store="nosuch")
        assert ctx.get("k", "nosuch") == 1
    assert ctx.get("k") == 1  # went to the default store
    warnings = [r for r in caplog.records if "nosuch" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_default_store_can_be_another_store(tmp_path: Path) -> None:
    mgr = ContextManager(file_config(tmp_path, default="file"))
    assert mgr.default_store == "file"
    assert mgr.store_names == ["memory", "file"]
    assert isinstance(mgr.store("file"), FileStore)
    assert isinstance(mgr.store("memory"), MemoryStore)


async def test_file_store_is_the_default_when_configured(tmp_path: Path) -> None:
    mgr = ContextManager(file_config(tmp_path / "ctx", default="file"))
    await mgr.start()
    mgr.flow_context("main").set("k", 1)
    assert mgr.store("file").get("main", "k") == 1
    assert mgr.store("memory").get("main", "k") is MISSING
    await mgr.stop()
    assert read_json(tmp_path / "ctx" / "main" / "flow.json") == {"k": 1}


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stores": {"bad-name": {"module": "memory"}}}, "invalid context store name"),
        ({"stores": {"x": {"module": "redis"}}}, "module must be 'memory' or 'file'"),
        ({"stores": {"x": "file"}}, "must be a mapping"),
        ({"stores": {"x": {"module": "file", "flushInterval": 3}}}, "unknown option"),
        ({"stores": {"x": {"module": "file", "flush_interval": -1}}}, "flush_interval"),
        ({"stores": {"x": {"module": "file", "flush_interval": "30"}}}, "flush_interval"),
        ({"stores": {"memory": {"module": "file"}}}, "built in"),
        ({"default": "file"}, "names no configured store"),
        ({"stores": []}, "must be a mapping"),
        ({"store": {}}, "unknown key"),
        ("memory", "must be a mapping"),
    ],
)
def test_invalid_settings(config: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextManager(config)  # type: ignore[arg-type]


async def test_relative_dir_resolved_against_base_dir(tmp_path: Path) -> None:
    settings = {"context": {"stores": {"file": {"module": "file", "dir": "state/ctx"}}}}
    mgr = ContextManager.from_settings(settings, base_dir=tmp_path)
    store = mgr.store("file")
    assert isinstance(store, FileStore)
    assert store.directory == tmp_path / "state" / "ctx"
    assert store.flush_interval == 30.0
    await mgr.start()
    mgr.global_context().set("k", 1, "file")
    await mgr.stop()
    assert read_json(tmp_path / "state" / "ctx" / "global" / "global.json") == {"k": 1}


def test_flow_and_node_names_checked(manager: ContextManager) -> None:
    with pytest.raises(ValueError, match="global"):
        manager.flow_context("global")
    with pytest.raises(ValueError, match="no ':'"):
        manager.flow_context("a:b")
    with pytest.raises(ValueError, match="no ':'"):
        manager.node_context("n:1", "main")
    with pytest.raises(ValueError):
        manager.node_context("", "main")


# --------------------------------------------------------------------------- FileStore


async def test_values_survive_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "ctx"
    first = ContextManager(file_config(directory))
    await first.start()
    first.node_context("counter", "main").set("#:(file)::count", 41)
    first.flow_context("main").set("#:(file)::state.mode", "on")
    first.global_context().set("#:(file)::users", ["ann", "bob"])
    first.global_context().set("volatile", "memory only")
    await first.stop()

    second = ContextManager(file_config(directory))
    await second.start()
    try:
        assert second.node_context("counter", "main").get("count", "file") == 41
        assert second.flow_context("main").get("state", "file") == {"mode": "on"}
        assert second.global_context().get("users", "file") == ["ann", "bob"]
        assert second.global_context().get("volatile") is None  # memory is not persisted
    finally:
        await second.stop()
    # Node-RED's layout, pretty JSON with 4 spaces.
    node_file = directory / "main" / "counter.json"
    assert read_json(node_file) == {"count": 41}
    assert node_file.read_text() == '{\n    "count": 41\n}\n'
    assert (directory / "main" / "flow.json").is_file()
    assert (directory / "global" / "global.json").is_file()


async def test_flush_after_interval(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=0.05)
    await store.open()
    try:
        store.set("main", "k", 1)
        target = tmp_path / "main" / "flow.json"
        assert not target.exists()  # nothing written synchronously
        for _ in range(100):
            await asyncio.sleep(0.02)
            if target.exists():
                break
        assert read_json(target) == {"k": 1}
        store.set("main", "k", 2)
        store.set("main", "j", 3)
        await asyncio.sleep(0.3)
        assert read_json(target) == {"k": 2, "j": 3}
    finally:
        await store.close()


async def test_nothing_lost_on_close_with_long_interval(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    store.set("global", "a.b", [1, 2])
    store.set("n1:main", "x", "y")
    await asyncio.sleep(0.05)
    assert not (tmp_path / "global" / "global.json").exists()  # timer still pending
    await store.close()
    assert read_json(tmp_path / "global" / "global.json") == {"a": {"b": [1, 2]}}
    assert read_json(tmp_path / "main" / "n1.json") == {"x": "y"}


async def test_explicit_flush(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    store.set("main", "k", 1)
    await store.flush()
    assert read_json(tmp_path / "main" / "flow.json") == {"k": 1}
    await store.close()


async def test_in_place_mutation_saved_on_close(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    store.set("main", "obj", {"n": 1})
    await store.flush()
    store.get("main", "obj")["n"] = 2  # mutated through the reference, no set()
    await store.close()
    assert read_json(tmp_path / "main" / "flow.json") == {"obj": {"n": 2}}


async def test_atomic_write_leaves_no_tmp(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    for i in range(5):
        store.set("main", f"k{i}", i)
        store.set(f"n{i}:main", "v", i)
        await store.flush()
    await store.close()
    assert not list(tmp_path.rglob("*.tmp"))
    assert len(list((tmp_path / "main").glob("*.json"))) == 6


async def test_stale_tmp_file_from_a_crash_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "flow.json").write_text('{"k": "good"}')
    (tmp_path / "main" / "flow.json.tmp").write_text('{"k": "half writ')
    store = FileStore(tmp_path)
    await store.open()
    assert store.get("main", "k") == "good"
    assert store.scopes() == ["main"]
    assert not (tmp_path / "main" / "flow.json.tmp").exists()
    await store.close()


async def test_corrupt_file_is_renamed_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "global").mkdir()
    (tmp_path / "global" / "global.json").write_text("{not json")
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "flow.json").write_text("[1, 2]")  # valid JSON, not an object
    (tmp_path / "main" / "n1.json").write_text('{"ok": true}')
    store = FileStore(tmp_path)
    with caplog.at_level(logging.ERROR, logger="flowengine.context"):
        await store.open()
    assert store.scopes() == ["n1:main"]
    assert store.get("n1:main", "ok") is True
    assert store.get("global", "x") is MISSING
    assert not (tmp_path / "global" / "global.json").exists()
    assert len(list((tmp_path / "global").glob("global.json.corrupt-*"))) == 1
    assert len(list((tmp_path / "main").glob("flow.json.corrupt-*"))) == 1
    assert sum("corrupt context file" in r.getMessage() for r in caplog.records) == 2
    store.set("global", "fresh", 1)  # the scope works again and is written anew
    await store.close()
    assert read_json(tmp_path / "global" / "global.json") == {"fresh": 1}


async def test_unencodable_values_do_not_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    loop: dict = {"name": "loop"}
    loop["self"] = loop
    store.set("main", "obj", object())
    store.set("main", "loop", loop)
    store.set("main", "tuple_key", {(1, 2): "t"})
    store.set("main", "fine", [1, "two", None, 3.5, True])
    with caplog.at_level(logging.WARNING, logger="flowengine.context"):
        await store.flush()
        await store.flush()
    saved = read_json(tmp_path / "main" / "flow.json")
    assert saved["obj"].startswith("<object object")
    assert saved["loop"] == {"name": "loop", "self": "[Circular]"}
    assert saved["tuple_key"] == {"(1, 2)": "t"}
    assert saved["fine"] == [1, "two", None, 3.5, True]
    assert sum("cannot encode" in r.getMessage() for r in caplog.records) == 1
    assert store.get("main", "loop") is loop  # memory keeps the real object
    await store.close()


async def test_file_store_requires_open(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(RuntimeError, match="open"):
        store.set("main", "k", 1)
    await store.open()
    store.set("main", "k", 1)
    await store.close()
    with pytest.raises(RuntimeError):
        store.get("main", "k")
    await store.open()  # reopen loads from disk
    assert store.get("main", "k") == 1
    await store.close()


async def test_delete_scope_removes_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path, flush_interval=3600)
    await store.open()
    store.set("n1:gone", "k", 1)
    store.set("n2:main", "k", 1)
    await store.flush()
    assert (tmp_path / "gone" / "n1.json").exists()
    store.delete_scope("n1:gone")
    await store.flush()
    assert not (tmp_path / "gone").exists()  # the emptied flow directory goes too
    assert (tmp_path / "main" / "n2.json").exists()
    await store.close()


@pytest.mark.parametrize(
    "scope",
    [
        "global",
        "main",
        "n1:main",
        "flow:main",  # a node called "flow" must not clash with flow.json
        "n1:global",  # a flow called "global" must not clash with global/
        "Flow:GLOBAL",
        "..:..",
        ".hidden:.dir",
        "a.b-c_d:my flow/with\\odd:chars%",
        "ünï:çødé",
        "x.json.tmp:main",
    ],
)
def test_layout_round_trip(scope: str) -> None:
    rel = scope_to_relpath(scope)
    assert len(rel.parts) == 2
    directory, filename = rel.parts
    assert directory not in (".", "..") and not directory.startswith(".")
    assert "/" not in filename and "\\" not in filename
    assert relpath_to_scope(directory, filename) == scope


def test_layout_names_are_distinct() -> None:
    scopes = ["global", "flow:global", "global:global", "flow", "main", "flow:main", "Flow:main"]
    paths = {str(scope_to_relpath(s)).lower() for s in scopes}
    assert len(paths) == len(scopes)


async def test_odd_names_persist(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    await store.open()
    scopes = ["flow:main", "..:..", "n1:global", "node.1:a/b"]
    for scope in scopes:
        store.set(scope, "k", scope)
    await store.close()
    for file in tmp_path.rglob("*"):
        assert file.resolve().is_relative_to(tmp_path.resolve())
    reopened = FileStore(tmp_path)
    await reopened.open()
    assert sorted(reopened.scopes()) == sorted(scopes)
    for scope in scopes:
        assert reopened.get(scope, "k") == scope
    await reopened.close()


# --------------------------------------------------------------------------- lifetime


def test_delete_node_context_with_memory_only(manager: ContextManager) -> None:
    node = manager.node_context("fn", "main")
    node.set("count", 1)
    manager.flow_context("main").set("f", 1)
    manager.delete_node_context("fn", "main")
    assert manager.node_context("fn", "main").get("count") is None
    assert manager.flow_context("main").get("f") == 1  # flow context survives


async def test_delete_node_context_kept_with_configured_store(
    file_manager: ContextManager,
) -> None:
    node = file_manager.node_context("fn", "main")
    node.set("count", 1)
    node.set("count", 2, "file")
    file_manager.delete_node_context("fn", "main")
    assert node.get("count") == 1
    assert node.get("count", "file") == 2


async def test_clean_removes_scopes_of_vanished_ids(tmp_path: Path) -> None:
    directory = tmp_path / "ctx"
    mgr = ContextManager(file_config(directory, flush_interval=3600))
    await mgr.start()
    for store in ("memory", "file"):
        mgr.node_context("keep", "main").set("k", 1, store)
        mgr.node_context("gone", "main").set("k", 1, store)
        mgr.node_context("keep", "old").set("k", 1, store)
        mgr.flow_context("main").set("k", 1, store)
        mgr.flow_context("old").set("k", 1, store)
        mgr.global_context().set("k", 1, store)
    await mgr.flush()
    assert (directory / "old" / "flow.json").exists()

    mgr.clean({("keep", "main"), "main"})

    for store in ("memory", "file"):
        assert sorted(mgr.store(store).scopes()) == ["global", "keep:main", "main"]
        assert mgr.node_context("keep", "main").get("k", store) == 1
        assert mgr.node_context("gone", "main").get("k", store) is None
        assert mgr.flow_context("old").get("k", store) is None
    await mgr.stop()
    assert not (directory / "old").exists()
    assert not (directory / "main" / "gone.json").exists()
    assert (directory / "main" / "keep.json").exists()
    assert (directory / "global" / "global.json").exists()


def test_context_is_exported() -> None:
    assert isinstance(ContextManager().global_context(), Context)
