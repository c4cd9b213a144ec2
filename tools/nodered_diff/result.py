"""One differential run: both sides, the comparison per flow file, and the figures by node type."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.nodered_diff import flowengine_side, nodered
from tools.nodered_diff.observe import Difference, Observations, compare, normalise
from tools.nodered_diff.plan import load_plan

AGREE, DIFFER, FAILED = "agree", "DIFFER", "IMPORT FAILED"


@dataclass
class FlowResult:
    name: str
    path: Path
    types: set[str]
    outcome: str
    differences: list[Difference] = field(default_factory=list)
    reason: str = ""
    nodered: Observations | None = None


@dataclass
class DiffResult:
    nodered_version: str
    flows: list[FlowResult]
    nodered_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_agree(self) -> bool:
        return all(f.outcome == AGREE for f in self.flows)

    def by_type(self) -> dict[str, tuple[int, int]]:
        """Per Node-RED node type: (flows using it that agree, flows using it)."""
        agree: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for flow in self.flows:
            for kind in flow.types:
                total[kind] += 1
                agree[kind] += flow.outcome == AGREE
        return {k: (agree[k], total[k]) for k in sorted(total)}

    def text(self, details: bool = True) -> str:
        lines = []
        for flow in self.flows:
            lines.append(f"{flow.outcome:13} {flow.path}")
            if details and flow.reason:
                lines.append(f"    {flow.reason}")
            if details:
                lines.extend(f"    {d.describe()}" for d in flow.differences)
        agreeing = sum(f.outcome == AGREE for f in self.flows)
        lines.append("")
        lines.append(f"Node-RED {self.nodered_version}: {agreeing}/{len(self.flows)} flows agree")
        lines.append("by node type (flows that agree / flows using the type):")
        lines.extend(f"  {kind:18} {a}/{t}" for kind, (a, t) in self.by_type().items())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodered_version": self.nodered_version,
            "flows": [{"path": str(f.path), "outcome": f.outcome, "reason": f.reason,
                       "types": sorted(f.types),
                       "differences": [d.__dict__ for d in f.differences],
                       "nodered": normalise(f.nodered).__dict__ if f.nodered else None}
                      for f in self.flows],
            "by_type": self.by_type(),
            "nodered_log": self.nodered_log,
        }


async def run_files(paths: list[Path], port: int) -> DiffResult:
    """Run ``paths`` on both runtimes (Node-RED first, then flowengine, on the same port)."""
    plan = load_plan(paths, port)
    node, package = nodered.install()
    nr_observed, nr_log = nodered.run(plan, node, package)
    fe_observed, failed, _report = await flowengine_side.run(plan)
    flows = []
    for flow_file in plan.files:
        result = FlowResult(flow_file.name, flow_file.path, flow_file.types(), AGREE,
                            nodered=nr_observed[flow_file.name])
        if flow_file.name in failed:
            result.outcome, result.reason = FAILED, failed[flow_file.name]
        else:
            result.differences = compare(nr_observed[flow_file.name],
                                         fe_observed[flow_file.name])
            if result.differences:
                result.outcome = DIFFER
        flows.append(result)
    return DiffResult(nodered.version(package), flows, nr_log)
