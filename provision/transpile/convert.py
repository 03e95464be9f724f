"""Merge translated inputs, validate the result once, and map its diagnostics back to the inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic, has_errors, warning
from provision.transpile import origin
from provision.transpile.inputs import Input

OUTPUT_NAME = "<output>"


@dataclass
class Result:
    output: bytes | None = None
    spec: dict[str, Any] | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Clashes:
    def __init__(self) -> None:
        self.found: list[tuple[ConfigPath, ConfigPath]] = []

    def record(self, parent_path: ConfigPath, child_path: ConfigPath) -> None:
        self.found.append((parent_path, child_path))


def merge_inputs(inputs: Sequence[Input]) -> tuple[dict[str, Any], list[Diagnostic]]:
    """All inputs merged in order; a conflict is a warning at the later input, naming the earlier one."""
    from provision.config.merge import merge_specs

    specs = [i for i in inputs if i.spec is not None]
    merged: dict[str, Any] = specs[0].spec or {}
    found: list[Diagnostic] = []
    for k in range(1, len(specs)):
        child = specs[k]
        clashes = _Clashes()
        combined = merge_specs(merged, child.spec or {}, clashes.record)
        for parent_path, child_path in clashes.found:
            found.append(_conflict(parent_path, child_path, merged, specs[:k], child))
        merged = combined
    return merged, found


def _conflict(parent_path: ConfigPath, child_path: ConfigPath, merged: dict[str, Any],
              earlier: Sequence[Input], child: Input) -> Diagnostic:
    earlier_origin = origin.resolve(parent_path, merged, earlier)
    related: tuple[tuple[str | None, Any], ...] = ()
    earlier_name = "an earlier input"
    if earlier_origin is not None:
        source, path = earlier_origin
        earlier_name = source.name
        related = ((source.name, source.position(path)),)
    # Never the values: they may be password hashes or credentials.
    message = f"also set, differently, by {earlier_name}; this later input wins"
    kinds = (parent_path[1:2], child_path[1:2])
    if parent_path[:1] == ("storage",) and kinds[0] != kinds[1]:
        was, now = (str(k[0]).rstrip("s").replace("directorie", "directory") for k in kinds)
        message = f"this {now} replaces the {was} at the same path in {earlier_name}"
    diag = warning(
        message,
        child.source_path(child_path) or child_path,
        "inputs merge in order and the later one overrides; remove one of the two settings if unintended",
    )
    return diag.at(child.name, child.position(child_path))._replace(related=related)


def _map_back(diag: Diagnostic, merged: dict[str, Any], inputs: Sequence[Input]) -> Diagnostic:
    found = origin.resolve(diag.path, merged, inputs)
    if found is None:
        return diag
    source, path = found
    source_path = source.source_path(path) if path else None
    located = diag.at(source.name, source.position(path))
    return located._replace(path=source_path) if source_path is not None else located


def _schema_check(item: Input) -> list[Diagnostic]:
    from provision.config import versions
    from provision.config.schema import schema_diagnostics

    newest = versions.find(versions.NEWEST)
    assert newest is not None and item.spec is not None
    found = []
    for diag, _at_key in schema_diagnostics(item.spec, newest.schema_file):
        source_path = item.source_path(diag.path)
        located = diag.at(item.name, item.position(diag.path))
        found.append(located._replace(path=source_path) if source_path is not None else located)
    return found


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for d in diagnostics:
        key = (d.severity, d.message, d.file, d.position)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _encode(spec: dict[str, Any], pretty: bool) -> bytes:
    if pretty:
        return (json.dumps(spec, indent=2, ensure_ascii=False) + "\n").encode()
    return (json.dumps(spec, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def transpile(inputs: Sequence[Input], pretty: bool = False, to_human: bool = False,
              platform: str | None = None) -> Result:
    from provision.config.pipeline import parse_config

    result = Result(diagnostics=[d for i in inputs for d in i.diagnostics])
    if has_errors(result.diagnostics) or any(i.spec is None for i in inputs):
        return result
    if len(inputs) > 1:
        # Merging needs each input well-formed; one input is checked as the output below.
        result.diagnostics += [d for i in inputs for d in _schema_check(i)]
        if has_errors(result.diagnostics):
            return result
    merged, conflicts = merge_inputs(inputs)
    result.diagnostics += conflicts
    data = _encode(merged, pretty)
    checked = parse_config(data, OUTPUT_NAME)
    result.diagnostics += [_map_back(d, merged, inputs) for d in checked.diagnostics]
    result.diagnostics = _dedupe(result.diagnostics)
    if not checked.ok or checked.spec is None:
        return result
    result.spec = checked.spec
    if to_human:
        from provision.importers.human.render import dump_human

        result.output = dump_human(checked.spec).encode()
        return result
    result.output = data
    if platform is not None:
        _fit_platform(result, data, platform)
    return result


def _fit_platform(result: Result, data: bytes, name: str) -> None:
    from provision.transpile.platforms import PLATFORMS, describe, fit

    limit = PLATFORMS[name]
    fitted = fit(data, limit)
    basis = " after base64 encoding" if limit.measured == "base64" else ""
    if fitted.compressed:
        result.output = fitted.output
        form = "gzip+base64 text" if limit.gzip == "base64" else "gzip data"
        result.notes.append(
            f"the JSON is {describe(len(data))}, over {name}'s user-data limit of "
            f"{describe(limit.max_bytes)}{basis}; written as {form} ({describe(fitted.size)}), "
            f"which provision decodes on the machine: {limit.delivery}"
        )
    elif fitted.over_by:
        how = "even gzip-compressed, " if limit.gzip else ""
        result.diagnostics.append(warning(
            f"the output is {how}{fitted.over_by} bytes over {name}'s user-data limit of "
            f"{describe(limit.max_bytes)}{basis} (JSON: {describe(len(data))})",
            (),
            "fetch large contents by URL (source: https://...) or move parts into a config "
            "referenced by provision.config.merge",
        ).at(OUTPUT_NAME, None))
