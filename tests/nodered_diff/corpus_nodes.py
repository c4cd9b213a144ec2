"""Builders of Node-RED node objects with the editor's defaults, for the differential corpus.

``node(type, id, wires, **props)`` gives the object Node-RED's editor would export for a node of
that type with those properties changed; ``flow(*nodes)`` lays them out on one tab. Wires are
given as a list of ids (output 0) or a list of lists (one per output).
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    "inject": {"props": [{"p": "payload"}, {"p": "topic", "vt": "str"}], "repeat": "",
               "crontab": "", "once": False, "onceDelay": 0.1, "topic": "", "payload": "",
               "payloadType": "date"},
    "debug": {"active": True, "tosidebar": True, "console": False, "tostatus": False,
              "complete": "payload", "targetType": "msg", "statusVal": "", "statusType": "auto"},
    "change": {"rules": [], "action": "", "property": "", "from": "", "to": "", "reg": False},
    "switch": {"property": "payload", "propertyType": "msg", "rules": [], "checkall": "true",
               "repair": False},
    "template": {"field": "payload", "fieldType": "msg", "format": "handlebars",
                 "syntax": "mustache", "template": "", "output": "str"},
    "json": {"property": "payload", "action": "", "pretty": False},
    "delay": {"pauseType": "delay", "timeout": "5", "timeoutUnits": "seconds", "rate": "1",
              "nbRateUnits": "1", "rateUnits": "second", "randomFirst": "1", "randomLast": "5",
              "randomUnits": "seconds", "drop": False, "allowrate": False, "outputs": 1},
    "trigger": {"op1": "1", "op2": "0", "op1type": "str", "op2type": "str", "duration": "250",
                "extend": False, "overrideDelay": False, "units": "ms", "reset": "",
                "bytopic": "all", "topic": "topic", "outputs": 1},
    "split": {"splt": "\\n", "spltType": "str", "arraySplt": 1, "arraySpltType": "len",
              "stream": False, "addname": "", "property": "payload"},
    "join": {"mode": "auto", "build": "object", "property": "payload", "propertyType": "msg",
             "key": "topic", "joiner": "\\n", "joinerType": "str", "useparts": False,
             "accumulate": False, "timeout": "", "count": "", "reduceRight": False,
             "reduceExp": "", "reduceInit": "", "reduceInitType": "", "reduceFixup": ""},
    "catch": {"scope": None, "uncaught": False},
    "status": {"scope": None},
    "complete": {"scope": [], "uncaught": False},
    "link in": {"links": []},
    "link out": {"mode": "link", "links": []},
    "link call": {"links": [], "linkType": "static", "timeout": "30"},
    "http in": {"url": "/", "method": "get", "upload": False, "swaggerDoc": ""},
    "http response": {"statusCode": "", "headers": {}},
    "http request": {"method": "GET", "ret": "txt", "paytoqs": "ignore", "url": "", "tls": "",
                     "persist": False, "proxy": "", "insecureHTTPParser": False,
                     "authType": "", "senderr": False, "headers": []},
    "websocket in": {"server": "", "client": ""},
    "websocket out": {"server": "", "client": ""},
    "junction": {},
    "comment": {"info": ""},
}
#: Config node types: no position, no wires.
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "websocket-listener": {"path": "/ws", "wholemsg": "false"},
    "websocket-client": {"path": "", "tls": "", "wholemsg": "false", "hb": "0",
                         "subprotocol": ""},
}
TAB = "tab"


def node(kind: str, node_id: str, wires: Any = (), **props: Any) -> dict[str, Any]:
    """A flow node of type ``kind`` with the editor's defaults and ``props``."""
    if wires and not isinstance(wires[0], list | tuple):
        wires = [list(wires)]
    result: dict[str, Any] = {"id": node_id, "type": kind, "z": TAB, "name": ""}
    result.update(DEFAULTS[kind])
    result.update(props)
    if kind not in ("debug", "link out", "http response", "websocket out", "comment"):
        outputs = max(len(wires), int(result.get("outputs", 1) or 0) if kind != "catch" else 1)
        result["wires"] = [list(w) for w in wires] + [[]] * (outputs - len(wires))
    else:
        result["wires"] = []
    return result


def config(kind: str, node_id: str, **props: Any) -> dict[str, Any]:
    """A config node."""
    return {"id": node_id, "type": kind, **CONFIG_DEFAULTS[kind], **props}


def flow(label: str, *nodes: dict[str, Any]) -> list[dict[str, Any]]:
    """A tab holding ``nodes``, laid out in a column."""
    placed = []
    for i, n in enumerate(nodes):
        if "wires" in n:
            n = {**n, "x": 200 + 150 * (i % 4), "y": 60 + 40 * i}
        placed.append(n)
    return [{"id": TAB, "type": "tab", "label": label, "disabled": False, "info": ""}, *placed]


def inject(node_id: str, wires: Any, payload: Any = "", payload_type: str = "str",
           topic: str = "", **props: Any) -> dict[str, Any]:
    """An inject node with a payload of ``payload_type`` (triggered by the driver)."""
    return node("inject", node_id, wires, payload=payload, payloadType=payload_type,
                topic=topic, **props)


def debug(node_id: str = "out", **props: Any) -> dict[str, Any]:
    """A debug node showing the whole message (what the test compares is what it receives)."""
    return node("debug", node_id, complete="true", **props)


def change(node_id: str, wires: Any, *rules: dict[str, Any]) -> dict[str, Any]:
    return node("change", node_id, wires, rules=list(rules))


def rule(t: str, p: str = "payload", to: Any = "", tot: str = "str", **more: Any
         ) -> dict[str, Any]:
    """A change-node rule."""
    return {"t": t, "p": p, "pt": "msg", "to": to, "tot": tot, **more}


def env(*entries: tuple[str, str, str]) -> list[dict[str, str]]:
    """A Node-RED env list from (name, type, value) triples."""
    return [{"name": name, "type": kind, "value": value} for name, kind, value in entries]


def subflow(sf_id: str, name: str, *members: dict[str, Any], inputs: Any = (),
            outputs: Any = (), status: Any = None, variables: Any = ()) -> list[dict[str, Any]]:
    """A subflow definition and its nodes. ``inputs``: the ids its input is wired to (None: it
    has no input); ``outputs``: per output, the ``id`` or ``(id, port)`` feeding it (the
    subflow's own id for its input); ``status``: likewise for the status output."""
    def port(sources: Any, x: int, y: int) -> dict[str, Any]:
        wires = []
        for source in sources:
            source_id, index = (source, 0) if isinstance(source, str) else source
            wires.append({"id": source_id, "port": index})
        return {"x": x, "y": y, "wires": wires}

    definition: dict[str, Any] = {
        "id": sf_id, "type": "subflow", "name": name, "info": "", "category": "",
        "in": [] if inputs is None else [{"x": 50, "y": 30,
                                          "wires": [{"id": t} for t in inputs]}],
        "out": [port(sources, 500, 30 + 40 * k) for k, sources in enumerate(outputs)],
        "env": env(*variables), "color": "#DDAA99"}
    if status is not None:
        definition["status"] = port(status, 500, 200)
    return [definition, *({**m, "z": sf_id} for m in members)]


def instance(sf_id: str, node_id: str, wires: Any = (), variables: Any = (),
             **props: Any) -> dict[str, Any]:
    """An instance of subflow ``sf_id``, with its own env values."""
    if wires and not isinstance(wires[0], list | tuple):
        wires = [list(wires)]
    return {"id": node_id, "type": f"subflow:{sf_id}", "z": TAB, "name": "",
            "env": env(*variables), "wires": [list(w) for w in wires], **props}


def group(group_id: str, name: str = "", variables: Any = (), **props: Any) -> dict[str, Any]:
    """A group (its nodes name it with ``g``)."""
    return {"id": group_id, "type": "group", "z": TAB, "name": name, "style": {"label": True},
            "nodes": [], "env": env(*variables), "x": 10, "y": 10, "w": 400, "h": 200, **props}
