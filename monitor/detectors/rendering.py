"""Text derived from the detector registry: default.toml and docs/rules.md's settings tables.

Both are generated, never edited by hand: ``python -m watchfloor.monitor.rules --write-defaults``
rewrites ``monitor/rules/default.toml``, and :func:`update_doc` rewrites each
table between ``<!-- settings:SECTION -->`` and ``<!-- /settings:SECTION -->`` in
docs/rules.md. Tests fail when the committed files differ from the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from watchfloor.monitor.detectors.registry import DetectorSpec, bounds_of, specs

HEADER = """\
# Watchfloor default detector rules. GENERATED from the detector registry: do not edit.
# Each detector declares its settings in its own module (monitor/detectors/*.py);
# regenerate with: python -m watchfloor.monitor.rules --write-defaults
#
# Override any key in your own rules file (watchfloor rules check FILE), per
# section or per scope:
#   [sla.queues."vip-phone"]  longest_wait_s = 10
#   [opinion.topics.brand-x]  min_count = 40
# See docs/rules.md for every parameter.
"""

ENGINE = """\
# --- engine (monitor/lifecycle.py) -------------------------------------------------------------
[lifecycle]
flap_window_s = 600
flap_threshold = 6
cap_per_minute = 10
auto_resolve = ["surge", "sla", "outage"]   # kinds the engine resolves when they clear;
                                            # opinion and leak incidents wait for a person

# queue = [components it depends on]: an outage of one inhibits the queue's surge/SLA notifications.
[inhibit]
"""


def toml_value(value: Any) -> str:
    """A setting's value as TOML (integral floats without ``.0``, as a person writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def render_default_toml() -> str:
    parts = [HEADER]
    for spec in specs():
        parts.append(_section_toml(spec))
    parts.append(ENGINE)
    return "\n".join(parts)


def _section_toml(spec: DetectorSpec[Any]) -> str:
    banner = f"# --- {spec.section}: {spec.title} "
    lines = [banner + "-" * max(3, 92 - len(banner))]
    lines += [f"# {note}" for note in spec.notes]
    lines.append(f"[{spec.section}]")
    lines += _aligned((f.name, f.default, bounds_of(f).doc) for f in spec.fields())
    for scope, table in spec.scoped_defaults.items():
        for name, values in table.items():
            note = spec.scoped_notes.get(f"{scope}.{name}")
            lines.append(f"[{spec.section}.{scope}.{name}]" + (f"  # {note}" if note else ""))
            lines += _aligned((k, v, "") for k, v in values.items())
    return "\n".join(lines) + "\n"


def _aligned(rows: Iterable[tuple[str, Any, str]]) -> list[str]:
    out = []
    for key, value, doc in rows:
        line = f"{key} = {toml_value(value)}"
        out.append(f"{line:<28} # {doc}" if doc else line)
    return out


def render_settings_table(spec: DetectorSpec[Any]) -> str:
    """The Markdown table of one section's settings: parameter, default, meaning."""
    rows = ["| parameter | default | meaning |", "| --- | --- | --- |"]
    for f in spec.fields():
        doc = bounds_of(f).doc.replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{toml_value(f.default)}` | {doc} |")
    for scope, table in spec.scoped_defaults.items():
        for name, values in table.items():
            figures = ", ".join(f"`{k} = {toml_value(v)}`" for k, v in values.items())
            note = spec.scoped_notes.get(f"{scope}.{name}", "")
            rows.append(f"| `[{spec.section}.{scope}.{name}]` | {figures} | {note} |")
    return "\n".join(rows)


def update_doc(text: str) -> str:
    """``text`` with every ``<!-- settings:X -->`` block regenerated from the registry."""
    by_section = {s.section: s for s in specs()}

    def table(match: re.Match[str]) -> str:
        spec = by_section.get(match.group(1))
        if spec is None:
            raise KeyError(f"docs: no detector section {match.group(1)!r}")
        body = render_settings_table(spec)
        return f"<!-- settings:{spec.section} -->\n{body}\n<!-- /settings:{spec.section} -->"

    return _BLOCK.sub(table, text)


_BLOCK = re.compile(r"<!-- settings:(\w+) -->\n.*?<!-- /settings:\1 -->", re.S)
