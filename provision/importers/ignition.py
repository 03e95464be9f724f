"""Ignition spec 3.0.0 to 3.6.0 configs, translated field by field.

A config is first checked against the schema of its own Ignition version
(schemas/ignition-3.X.0.json), plus the few rules that differ by version;
then translated: provision's spec uses Ignition's field names, so translation
renames the ``ignition`` section, drops nulls (Ignition's "unset") and empty
compression strings. Anything provision cannot express is rejected by the
semantic checks that follow, never dropped.
"""

from __future__ import annotations

from typing import Any

from provision.config import versions
from provision.config.kinds import Imported
from provision.diagnostics import ConfigPath, Diagnostic, error, has_errors, warning
from provision.source.document import Document

SUPPORTED = ("3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0")


def _version(document: Document) -> tuple[str | None, Diagnostic | None]:
    version = document.value["ignition"].get("version")
    path = ("ignition", "version")
    if not isinstance(version, str):
        return None, error("missing Ignition config version", path)
    if version.startswith(("1.", "2.")) or version in {"1", "2"}:
        return None, error(
            f"Ignition spec {version} is not supported",
            path,
            hint="spec 2.x and older are incompatible with 3.x; convert the config to spec 3.x first",
        )
    if version not in SUPPORTED:
        return None, error(
            f"unsupported Ignition config version {version!r}",
            path,
            hint="supported Ignition versions: " + ", ".join(SUPPORTED),
        )
    return version, None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_nulls(v)
            for k, v in value.items()
            if v is not None and not (k == "compression" and v == "")
        }
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _hashes(value: Any, path: ConfigPath) -> list[tuple[ConfigPath, str]]:
    """Every verification.hash in the config, with its path."""
    found: list[tuple[ConfigPath, str]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "verification" and isinstance(sub, dict) and isinstance(sub.get("hash"), str):
                found.append(((*path, key, "hash"), sub["hash"]))
            else:
                found += _hashes(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _hashes(sub, (*path, i))
    return found


def _version_rules(spec: dict[str, Any], version: str) -> list[Diagnostic]:
    """Rules that differ by Ignition version and that the schemas cannot say."""
    found = []
    if version == "3.0.0":
        for path, value in _hashes(spec, ()):
            if value.startswith("sha256-"):
                found.append(error("sha256 verification needs Ignition spec 3.1.0 or newer", path))
    if version < "3.6.0":
        storage = spec.get("storage") or {}
        for section in ("files", "directories"):
            for i, node in enumerate(storage.get(section) or []):
                mode = node.get("mode")
                if isinstance(mode, int) and mode & 0o7000:
                    found.append(warning(
                        "setuid, setgid and sticky bits need Ignition spec 3.6.0",
                        ("storage", section, i, "mode"),
                        hint="Ignition before 3.6.0 ignores them; provision applies them",
                    ))
    return found


def _to_provision_path(path: ConfigPath) -> ConfigPath | None:
    return ignition_path(path)


def import_value(value: dict[str, Any], version: str) -> tuple[dict[str, Any] | None, list[tuple[Diagnostic, bool]]]:
    """An Ignition config of a known ``version`` (as a dict) to a provision spec.

    Returns (spec or None, diagnostics with "at the key" flags). Diagnostics
    carry Ignition paths and no position: the caller places them (the
    Butane importer maps them back to its YAML first).
    """
    from provision.config.schema import schema_diagnostics

    found = schema_diagnostics(value, f"ignition-{version}.json")
    if found:
        return None, found
    rules = _version_rules(value, version)
    if has_errors(rules):
        return None, [(d, False) for d in rules]
    spec = _without_nulls(value)
    meta = spec.pop("ignition")
    meta["version"] = versions.NEWEST
    spec = {"provision": meta, **spec}
    return spec, [(d, False) for d in rules]


def ignition_path(path: ConfigPath) -> ConfigPath:
    """The Ignition path of a provision spec path (the ``provision`` section is Ignition's ``ignition``)."""
    if path[:1] == ("provision",):
        return ("ignition", *path[1:])
    return path


def to_spec(document: Document) -> Imported:
    version, problem = _version(document)
    if problem:
        return Imported(None, [problem])
    assert version is not None
    spec, found = import_value(document.value, version)
    positioned = []
    for diag, at_key in found:
        pos = document.locate_key(diag.path) if at_key else document.locate(diag.path)
        positioned.append(diag.at(document.name, pos))
    return Imported(spec, positioned, _to_provision_path)
