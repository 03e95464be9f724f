"""Properties of transpile: its output always validates, machine -> human -> machine is lossless,
and merging fragments that do not conflict is associative."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.config.merge import merge_specs
from provision.config.pipeline import parse_config
from provision.importers.human import to_spec
from provision.importers.human.render import dump_human
from provision.resources import load_json
from provision.source.loader import load_document
from provision.transpile.convert import transpile
from provision.transpile.inputs import load_input

SCHEMA = load_json("schemas", "provision-1.1.0.json")
# Printable text that YAML and JSON both carry unchanged (no control characters).
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=12)


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Schema-shaped values: every field of the machine spec can appear."""
    if "$ref" in node:
        return st.deferred(lambda: from_schema(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]], depth))
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties")
        if props is None:
            return st.dictionaries(TEXT, TEXT, max_size=2) if depth < 6 else st.just({})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, depth + 1) for k, v in props.items() if k in required},
            optional={k: from_schema(v, depth + 1) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(node["items"], depth + 1), max_size=2 if depth < 4 else 0)
    if kind == "integer":
        return st.integers(0, 0o7777)
    if kind == "boolean":
        return st.booleans()
    return TEXT


MACHINE_SPECS = from_schema(SCHEMA)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MACHINE_SPECS)
def test_machine_spec_survives_human_yaml_and_back(spec: dict[str, Any]) -> None:
    text = dump_human(spec)
    document = load_document(text.encode(), "roundtrip.yaml")
    imported = to_spec(document)
    assert imported.diagnostics == []
    assert imported.spec == spec


# -- transpile output always validates -------------------------------------------------

PATHS = st.sampled_from(["/etc/a", "/etc/b", "/srv/c", "relative", "/etc/a/../x", "/etc/b/inner"])
MODES = st.one_of(st.sampled_from(['"0644"', '"0755"', '"0600"', "420", "644", '"0999"', '"abc"']))
UNITS = st.sampled_from(["a.service", "b.timer", "bad", "c.mount"])


@st.composite
def human_documents(draw: st.DrawFn) -> str:
    lines = ["variant: provision", "version: 1.0.0", "storage:", "  files:"]
    for _ in range(draw(st.integers(0, 3))):
        lines.append(f"    - path: {draw(PATHS)}")
        if draw(st.booleans()):
            lines.append(f"      mode: {draw(MODES)}")
        if draw(st.booleans()):
            lines.append(f"      contents: {{inline: {draw(st.sampled_from(['hi', 'x' * 200, '[1]', '']))!r}}}")
        if draw(st.booleans()):
            lines.append(f"      overwrite: {draw(st.sampled_from(['true', 'false', 'maybe']))}")
    lines.append("  links:")
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"    - {{path: {draw(PATHS)}, target: {draw(PATHS)}}}")
    lines += ["systemd:", "  units:"]
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"    - name: {draw(UNITS)}")
        if draw(st.booleans()):
            lines.append(f"      enabled: {draw(st.sampled_from(['true', 'false', '1']))}")
        if draw(st.booleans()):
            lines.append("      contents: \"[Service]\\nExecStart=/bin/true\\n\"")
    if draw(st.booleans()):
        lines += ["passwd:", "  users:", f"    - name: {draw(st.sampled_from(['core', 'root', '']))!r}",
                  f"      uid: {draw(st.sampled_from(['1000', '-1', 'x']))}"]
    if draw(st.booleans()):
        lines += ["containers:", f"  runtime: {draw(st.sampled_from(['docker', 'podman', 'lxc']))}",
                  "  containers:", "    - name: web", "      image: nginx",
                  f"      ports: [{draw(st.sampled_from(['8080:80', '80', 'x:y', '70000']))!r}]"]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(st.lists(human_documents(), min_size=1, max_size=3))
def test_transpile_output_always_validates(documents: list[str]) -> None:
    inputs = [load_input(text.encode(), f"in{i}.yaml", "/nonexistent") for i, text in enumerate(documents)]
    result = transpile(inputs)
    if result.output is None:
        assert any(d.is_error for d in result.diagnostics)
        return
    parsed = parse_config(result.output, "out.json")
    assert parsed.ok, parsed.diagnostics
    assert not any(d.is_error for d in result.diagnostics)


# -- merging is associative when nothing conflicts ----------------------------------------

KEYS = ["a", "b", "c", "d"]


def _value(key: str, field: str) -> Any:
    """Each (entry key, field) has one value everywhere, so fragments never conflict."""
    return {"mode": 0o600 + KEYS.index(key), "overwrite": key in "ab", "enabled": key in "ac",
            "contents": f"[Unit]\nDescription={key}\n", "uid": 1000 + KEYS.index(key)}[field]


@st.composite
def fragments(draw: st.DrawFn) -> dict[str, Any]:
    files = [{"path": f"/etc/{k}", **{f: _value(k, f) for f in draw(st.sets(st.sampled_from(["mode", "overwrite"])))}}
             for k in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=3))]
    units = [{"name": f"{k}.service", **{f: _value(k, f) for f in draw(st.sets(st.sampled_from(["enabled", "contents"])))},
              "dropins": [{"name": f"{d}.conf"} for d in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=2))]}
             for k in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=3))]
    users = [{"name": k, "sshAuthorizedKeys": draw(st.lists(st.sampled_from(["k1", "k2", "k3"]), unique=True)),
              "groups": draw(st.lists(st.sampled_from(["wheel", "docker"]), unique=True)),
              **({"uid": _value(k, "uid")} if draw(st.booleans()) else {})}
             for k in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=2))]
    return {"provision": {"version": "1.0.0"}, "storage": {"files": files},
            "systemd": {"units": units}, "passwd": {"users": users}}


@settings(max_examples=200, deadline=None)
@given(fragments(), fragments(), fragments())
def test_merging_non_conflicting_fragments_is_associative(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    conflicts: list[object] = []

    def record(parent: object, child: object) -> None:
        conflicts.append((parent, child))

    left = merge_specs(merge_specs(a, b, record), c, record)
    right = merge_specs(a, merge_specs(b, c, record), record)
    assert conflicts == []
    assert left == right


# -- no input makes it raise ------------------------------------------------------------

ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | TEXT
    | st.sampled_from(["0644", "/etc/x", "8080:80", "a=b", "/a:/b:ro", "x.service", "ext4", "swap"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["path", "mode", "contents", "inline", "local", "source", "name", "enabled",
                         "trees", "files", "ports", "env", "volumes", "password", "plain", "device",
                         "format", "with_mount_unit", "contents_local", "ssh_authorized_keys_local",
                         "subvolumes", "mount_options", "file_mode", "user", "id", "x"]),
        inner, max_size=4),
    max_leaves=12,
)
SLOTS = [
    ("storage",), ("storage", "files"), ("storage", "files", 0), ("storage", "files", 0, "contents"),
    ("storage", "trees"), ("storage", "trees", 0), ("storage", "filesystems", 0),
    ("systemd", "units", 0), ("passwd", "users", 0), ("passwd", "groups", 0, "password"),
    ("containers", "containers", 0), ("provision",), ("provision", "config", "merge", 0),
]


def _place(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    return {"variant": "provision", "version": "1.0.0", **value}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SLOTS), ANY)
def test_odd_values_anywhere_give_diagnostics_not_exceptions(slot: tuple[str | int, ...], value: Any) -> None:
    import json

    document = json.dumps(_place(slot, value)).encode()
    result = transpile([load_input(document, "odd.json", "/nonexistent")])
    if result.output is not None:
        assert parse_config(result.output, "out.json").ok
    else:
        assert any(d.is_error for d in result.diagnostics)
