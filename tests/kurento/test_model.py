"""One Kurento object model for both sides: the media server implements what
flowengine.kurento.model declares, and the client's tables (flowengine.kurento.proxies) agree
with it; the shared protocol layer loads neither the client nor ``websockets``."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowengine.kurento import model, proxies
from flowengine.kurento.client import KurentoClient
from flowengine.kurento.proxies import (
    OBJECT_RESULTS,
    SIGNATURES,
    ProxyHost,
    camel_name,
    wire_params,
)
from flowengine.media.elements.media_object import MediaObjectImpl, snake
from flowengine.media.elements.server_manager import ServerManagerImpl
from flowengine.media.server import default_factories

KURENTO = Path(proxies.__file__).parent


def implementations() -> dict[str, type[MediaObjectImpl]]:
    """The media server's class for each class it can create, and the ServerManager."""
    return {**default_factories(), "ServerManager": ServerManagerImpl}


def resolved_methods(cls: model.RemoteClass) -> list[model.Method]:
    """The methods an invoke on an object of ``cls`` resolves to (nearest declaration)."""
    names = dict.fromkeys(m.name for c in model.lineage(cls) for m in c.methods)
    return [m for name in names if (m := model.find_method(cls, name)) is not None]


def all_operations() -> list[tuple[model.RemoteClass, str, tuple[model.Param, ...]]]:
    """``(class, operation, params)`` for every method and property accessor of every class."""
    out = []
    for cls in model.CLASSES.values():
        out += [(cls, m.name, m.params) for m in resolved_methods(cls)]
        for c in model.lineage(cls):
            for prop in c.properties:
                out.append((cls, prop.getter, ()))
                if prop.settable:
                    out.append((cls, prop.setter, (model.Param(prop.name, prop.type),)))
    return out


def test_shared_layer_loads_neither_the_client_nor_websockets() -> None:
    code = (
        "import json, sys\n"
        "import flowengine.kurento.jsonrpc, flowengine.kurento.errors, flowengine.kurento.model\n"
        "shared = sorted(sys.modules)\n"
        "import flowengine.media.server\n"
        "print(json.dumps([shared, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    shared, media_server = json.loads(done.stdout)
    for loaded in (shared, media_server):
        assert "flowengine.kurento.jsonrpc" in loaded
        assert "websockets" not in loaded
        assert "flowengine.kurento.client" not in loaded
        assert "flowengine.kurento.proxies" not in loaded


def test_the_package_still_exports_the_client_on_demand() -> None:
    import flowengine.kurento as package

    for name in package.__all__:
        assert getattr(package, name).__name__ == name
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


@pytest.mark.parametrize("type_name", sorted(implementations()))
def test_the_server_implements_every_method_the_model_declares(type_name: str) -> None:
    impl = implementations()[type_name]
    assert impl.remote_class is model.CLASSES[type_name]
    for method in resolved_methods(impl.remote_class):
        function = getattr(impl, snake(method.name), None)
        assert callable(function), f"{type_name}.{method.name} is not implemented"
        params = [p for p in inspect.signature(function).parameters if p != "self"]
        assert params == [snake(p.name) for p in method.params], f"{type_name}.{method.name}"


def test_every_client_signature_is_a_method_the_server_implements() -> None:
    implemented = {
        (m.name, tuple(p.name for p in m.params))
        for impl in implementations().values()
        for m in resolved_methods(impl.remote_class)
    }
    assert set(SIGNATURES.items()) <= implemented


def test_every_server_method_with_params_has_the_client_signature() -> None:
    # Positional arguments map as the server declares them, except where a later class
    # declares a method again with other params: Dispatcher.connect(source, sink) keeps
    # MediaElement.connect's signature on the client (pass source and sink by name).
    differing = set()
    for impl in implementations().values():
        for method in resolved_methods(impl.remote_class):
            if method.params and SIGNATURES.get(method.name) != tuple(
                p.name for p in method.params
            ):
                differing.add((impl.remote_class.name, method.name))
    assert differing == {("Dispatcher", "connect")}


def test_the_client_reaches_every_name_the_server_dispatches_on() -> None:
    # The server runs an invoke of `operation` as the Python method snake(operation) with
    # snake_case params; the client must turn those snake names back into Kurento's spelling.
    names = {name for _, operation, params in all_operations()
             for name in (operation, *(p.name for p in params))}
    names |= {p.name for cls in model.CLASSES.values() for p in (*cls.constructor,
                                                                  *cls.properties)}
    wrong = {snake(n): (camel_name(snake(n)), n) for n in names if camel_name(snake(n)) != n}
    assert wrong == {}
    assert all(camel_name(n) == n for n in names)  # Kurento's own spelling is kept


def test_complex_params_go_out_tagged_with_the_server_declared_type() -> None:
    checked = 0
    for _, operation, params in all_operations():
        for param in params:
            if param.type in model.COMPLEX_TYPES:
                sent = wire_params(operation, (), {snake(param.name): {}})[param.name]
                assert sent == {"__module__": "kurento", "__type__": param.type}
                checked += 1
    assert checked >= 5  # IceCandidate, OfferOptions, AudioCaps, VideoCaps, RembParams


def test_object_results_are_exactly_the_operations_returning_objects() -> None:
    expected: dict[str, bool] = {}
    for cls in model.CLASSES.values():
        for prop in cls.properties:
            if prop.type.removesuffix("[]") in model.CLASSES:
                expected[prop.getter] = prop.type.endswith("[]")
        for method in cls.methods:
            if method.returns and method.returns.removesuffix("[]") in model.CLASSES:
                expected[method.name] = method.returns.endswith("[]")
    assert expected == OBJECT_RESULTS
    assert OBJECT_RESULTS["getMediaPipeline"] is False
    assert OBJECT_RESULTS["getChildren"] is True


def _attributes(path: Path) -> list[ast.Attribute]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)]


def _protocol_members() -> set[str]:
    methods = {n for n, v in vars(ProxyHost).items()
               if inspect.isfunction(v) and not n.startswith("_")}
    return methods | set(ProxyHost.__annotations__)


def test_proxies_use_only_the_declared_interface_of_the_client() -> None:
    used = {node.attr for node in _attributes(KURENTO / "proxies.py")
            if isinstance(node.value, ast.Attribute) and node.value.attr == "client"}
    assert used and used <= _protocol_members()
    private = [ast.unparse(node) for node in _attributes(KURENTO / "proxies.py")
               if node.attr.startswith("_") and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert private == []


def test_the_client_implements_the_interface_and_keeps_to_its_own_privates() -> None:
    client = KurentoClient("ws://127.0.0.1:9/kurento")
    assert isinstance(client.epoch, int)
    for name in _protocol_members() - set(ProxyHost.__annotations__):
        declared = inspect.signature(getattr(ProxyHost, name)).parameters
        actual = inspect.signature(getattr(KurentoClient, name)).parameters
        assert list(actual)[:len(declared)] == list(declared), name
    own = set(dir(KurentoClient)) | set(vars(client))
    foreign = [ast.unparse(node) for node in _attributes(KURENTO / "client.py")
               if node.attr.startswith("_") and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id == "self")
               and node.attr not in own]
    assert foreign == []
