"""What an import did: files written, nodes converted, and everything that needs a look."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Exit codes of ``flowrun import``.
CLEAN, ATTENTION, FAILED = 0, 1, 2


@dataclass(frozen=True)
class NodeNote:
    """One node worth naming in the report."""

    flow: str
    id: str  # the id in the flow file
    nr_id: str  # the id in flows.json
    nr_type: str
    name: str
    text: str = ""

    def label(self) -> str:
        name = f" ({self.name!r})" if self.name else ""
        return f"{self.flow}: {self.id}{name}, Node-RED {self.nr_type} {self.nr_id}"


@dataclass
class ImportReport:
    """The result of :func:`flowengine.importer.import_nodered`.

    ``problems`` are defects of the input (not a Node-RED export, duplicate ids, dangling
    wires, unknown types...) and errors of the output; ``notes`` name what was converted with
    a difference; ``functions`` are the JavaScript function nodes (imported disabled),
    ``placeholders`` the nodes of unknown types (disabled placeholders).
    """

    source: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    converted: dict[str, int] = field(default_factory=dict)  # Node-RED type -> count
    ids: dict[str, str] = field(default_factory=dict)  # Node-RED id -> flow-file id
    flows: dict[str, str] = field(default_factory=dict)  # Node-RED tab id -> flow name
    functions: list[NodeNote] = field(default_factory=list)
    placeholders: list[NodeNote] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    valid: bool = False  # the files written load without errors

    @property
    def exit_code(self) -> int:
        """0: written, valid, nothing to look at; 1: written and valid, but some nodes or
        problems need a look; 2: nothing usable written."""
        if not self.files or not self.valid:
            return FAILED
        if self.problems or self.functions or self.placeholders:
            return ATTENTION
        return CLEAN

    def text(self) -> str:
        """The report as ``flowrun import`` prints it."""
        lines: list[str] = []
        if self.files:
            total = sum(self.converted.values())
            lines.append(f"converted {total} node(s) from {self.source} into "
                         f"{len(self.files)} file(s) in {self.out_dir}:")
            lines.extend(f"  {path.name}" for path in self.files)
            if self.converted:
                counts = ", ".join(f"{t} {n}" for t, n in sorted(self.converted.items()))
                lines.append(f"node types: {counts}")
        if self.functions:
            lines.append(f"{len(self.functions)} JavaScript function node(s) imported "
                         "DISABLED (their code is kept as a comment; rewrite it in Python "
                         "and remove `disabled: true`):")
            lines.extend(f"  {n.label()}" for n in self.functions)
        if self.placeholders:
            lines.append(f"{len(self.placeholders)} node(s) could not be converted and are "
                         "disabled placeholders (their configuration is kept as a comment):")
            lines.extend(f"  {n.label()}{': ' + n.text if n.text else ''}"
                         for n in self.placeholders)
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  {p}" for p in self.problems)
        if self.notes:
            lines.append(f"{len(self.notes)} note(s) on differences:")
            lines.extend(f"  {n}" for n in self.notes)
        if self.files:
            lines.append("the flow files are valid (flowrun validate passes)" if self.valid
                         else "the flow files do NOT validate: see the problems above")
        else:
            lines.append("nothing was written")
        return "\n".join(lines)
