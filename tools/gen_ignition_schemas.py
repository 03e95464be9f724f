"""Write schemas/ignition-3.X.0.json, one schema per Ignition spec version.

Each is derived from provision's own schema (Ignition field names are ours)
by removing what that Ignition version does not have, and allowing ``null``
wherever Ignition's optional (pointer) fields do. Version facts come from
Ignition's "Upgrading Configs" documentation.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0"]

# (first version that has it, JSON pointer-ish location, property) — removed below that version.
FEATURES: list[tuple[str, str, str]] = [
    ("3.1.0", "$defs/resource", "httpHeaders"),
    ("3.1.0", "properties/ignition", "proxy"),
    ("3.1.0", "$defs/filesystem", "mountOptions"),
    ("3.2.0", "properties/storage", "luks"),
    ("3.2.0", "$defs/partition", "resize"),
    ("3.2.0", "$defs/user", "shouldExist"),
    ("3.2.0", "$defs/group", "shouldExist"),
    ("3.3.0", "", "kernelArguments"),
    ("3.4.0", "$defs/luks", "discard"),
    ("3.4.0", "$defs/luks", "openOptions"),
    ("3.5.0", "$defs/luks", "cex"),
]

CLEVIS = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "description": "Clevis binding (TPM2, Tang, threshold, custom pin), applied by the disks stage.",
    "properties": {
        "custom": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "config": {"type": ["string", "null"]},
                "needsNetwork": {"type": ["boolean", "null"]},
                "pin": {"type": ["string", "null"]},
            },
        },
        "tang": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "url": {"type": "string"},
                    "thumbprint": {"type": ["string", "null"]},
                    "advertisement": {"type": ["string", "null"]},
                },
            },
        },
        "threshold": {"type": ["integer", "null"]},
        "tpm2": {"type": ["boolean", "null"]},
    },
}


def _at(schema: dict[str, Any], where: str) -> dict[str, Any]:
    node = schema
    for part in filter(None, where.split("/")):
        node = node[part]
    return node


def _allow_null(node: Any, required: frozenset[str] = frozenset()) -> Any:
    """Optional properties may be null, as Ignition's pointer fields may."""
    if isinstance(node, list):
        return [_allow_null(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {
                name: _nullable(_allow_null(sub)) if name not in node.get("required", []) else _allow_null(sub)
                for name, sub in value.items()
            }
        else:
            out[key] = _allow_null(value)
    return out


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {"anyOf": [{"$ref": node["$ref"]}, {"type": "null"}], **{k: v for k, v in node.items() if k != "$ref"}}
    if "enum" in node:
        return {**node, "enum": [*node["enum"], None]}
    if "const" in node:
        return node
    kind = node.get("type")
    if isinstance(kind, str):
        return {**node, "type": [kind, "null"]}
    return node


def build(version: str) -> dict[str, Any]:
    ours = json.loads((ROOT / "schemas" / "provision-1.0.0.json").read_text())
    schema = copy.deepcopy(ours)
    schema["$id"] = f"https://provision.invalid/schemas/ignition-{version}.json"
    schema["title"] = f"Ignition config spec {version} (as read by provision)"
    props = schema["properties"]
    props["ignition"] = props.pop("provision")
    props["ignition"]["description"] = "Metadata about the config itself."
    props["ignition"]["properties"]["version"] = {"type": "string", "const": version, "description": "Ignition spec version."}
    schema["required"] = ["ignition"]
    del props["containers"]
    del schema["$defs"]["container"]
    del schema["$defs"]["subvolume"]
    del schema["$defs"]["filesystem"]["properties"]["subvolumes"]
    schema["$defs"]["luks"]["properties"]["clevis"] = CLEVIS
    # Ignition takes an empty compression string for "none" (its validation
    # accepts "" and "gzip"); the import drops it before provision's checks.
    compression = schema["$defs"]["resource"]["properties"]["compression"]
    compression["enum"] = [*compression["enum"], ""]
    if version < "3.3.0":
        fmt = schema["$defs"]["filesystem"]["properties"]["format"]
        fmt["enum"] = [f for f in fmt["enum"] if f != "none"]
    if version < "3.1.0":
        # Config references and CA bundles gained compression in 3.1.0.
        schema["$defs"]["plainResource"] = {
            **copy.deepcopy(schema["$defs"]["resource"]),
            "description": "A resource without compression (Ignition 3.0.0 config references and CAs).",
        }
        del schema["$defs"]["plainResource"]["properties"]["compression"]
        ign = props["ignition"]["properties"]
        ign["config"]["properties"]["merge"]["items"] = {"$ref": "#/$defs/plainResource"}
        ign["config"]["properties"]["replace"] = {"$ref": "#/$defs/plainResource"}
        ign["security"]["properties"]["tls"]["properties"]["certificateAuthorities"]["items"] = {
            "$ref": "#/$defs/plainResource"
        }
    for since, where, name in FEATURES:
        if version < since:
            del _at(schema, where)["properties"][name]
    if version < "3.1.0":
        del schema["$defs"]["plainResource"]["properties"]["httpHeaders"]
    return _allow_null(schema)  # type: ignore[no-any-return]


def render(version: str) -> str:
    return json.dumps(build(version), indent=2) + "\n"


if __name__ == "__main__":
    check = sys.argv[1:] == ["--check"]
    stale = []
    for version in VERSIONS:
        path = ROOT / "schemas" / f"ignition-{version}.json"
        if check:
            if not path.exists() or path.read_text() != render(version):
                stale.append(path.name)
        else:
            path.write_text(render(version))
    if stale:
        print("stale:", *stale)
        raise SystemExit(1)
