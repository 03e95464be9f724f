"""bytes -> positioned document -> version -> schema -> newest model -> semantic checks.

:func:`parse_config` never raises for bad input: every problem becomes a
positioned Diagnostic. :func:`load_config` is the strict form stages use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.config import kinds, versions
from provision.config.model import Config
from provision.diagnostics import ConfigPath, Diagnostic, Position, error, has_errors
from provision.errors import ConfigError
from provision.gcpause import cyclic_gc_paused
from provision.source.document import Document


class ParsedConfig:
    # A plain class, not a dataclass: see provision.diagnostics.
    def __init__(self, name: str) -> None:
        self.name = name
        self.document: Document | None = None
        self.kind: str | None = None  # "provision", "ignition", "cloud-config", "human", "user-data"
        self.version: str | None = None
        self.spec: dict[str, Any] | None = None  # newest spec dict, when valid
        self.config: Config | None = None
        self.diagnostics: list[Diagnostic] = []

    @property
    def ok(self) -> bool:
        return self.config is not None and not has_errors(self.diagnostics)


def _header_only_cloud_config(data: bytes, name: str) -> Document | None:
    """cloud-init accepts a #cloud-config with nothing after the header: an empty config."""
    lines = data.decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    if not lines or lines[0].rstrip() != "#cloud-config":
        return None
    if any(line.strip() and not line.lstrip().startswith("#") for line in lines[1:]):
        return None
    return Document(name, "\n".join(lines), None, "yaml")


def _position(doc: Document, diag: Diagnostic, at_key: bool = False) -> Diagnostic:
    if diag.position is not None:
        return diag if diag.file else diag._replace(file=doc.name)
    pos = doc.locate_key(diag.path) if at_key else doc.locate(diag.path)
    return diag.at(doc.name, pos)


def _own_spec_version(doc: Document) -> tuple[str | None, Diagnostic | None]:
    meta = doc.value.get("provision")
    version = meta.get("version") if isinstance(meta, dict) else None
    if not isinstance(version, str):
        return None, error(
            "missing config version", ("provision", "version"),
            hint=f'add "provision": {{"version": "{versions.NEWEST}"}}',
        )
    if versions.find(version) is None:
        return None, error(
            f"unsupported config version {version!r}",
            ("provision", "version"),
            hint="supported versions: " + ", ".join(versions.supported()),
        )
    return version, None


def _check_newest(
    spec: dict[str, Any], schema_checked: bool = False,
) -> tuple[list[tuple[Diagnostic, bool]], Config | None]:
    """Schema of the newest version (unless ``schema_checked``: the spec is known
    to satisfy it), then the model and the semantic checks."""
    from provision.config.build import build_config
    from provision.config.schema import schema_diagnostics

    if not schema_checked:
        newest = versions.find(versions.NEWEST)
        assert newest is not None
        found = schema_diagnostics(spec, newest.schema_file)
        if found:
            return found, None
    config = build_config(spec)
    return [(d, False) for d in _semantic(config)], config


def _semantic(config: Config) -> list[Diagnostic]:
    # Imported here for start-up time, never guarded: a missing check module
    # is a broken installation and must fail loudly, not pass every config.
    from provision.config.checks import run_checks

    found: list[Diagnostic] = run_checks(config)
    return found


def _parse_own(doc: Document, parsed: ParsedConfig) -> None:
    from provision.config.schema import schema_diagnostics

    version, problem = _own_spec_version(doc)
    if problem:
        parsed.diagnostics.append(_position(doc, problem))
        return
    assert version is not None
    parsed.version = version
    spec_version = versions.find(version)
    assert spec_version is not None
    if version != versions.NEWEST:
        # Parsed by its own version's rules first.
        found = schema_diagnostics(doc.value, spec_version.schema_file)
        if found:
            parsed.diagnostics += [_position(doc, d, k) for d, k in found]
            return
        spec = versions.to_newest(doc.value, version)
        # Versions that only add optional fields need no second schema pass.
        found, config = _check_newest(spec, schema_checked=versions.newest_schema_implied(version))
    else:
        spec = doc.value
        found, config = _check_newest(spec)
    parsed.diagnostics += [_position(doc, d, k) for d, k in found]
    parsed.spec, parsed.config = spec, config


def _parse_imported(doc: Document, parsed: ParsedConfig, kind: str) -> None:
    module = kinds.importer(kind)
    assert module is not None
    imported: kinds.Imported = module.to_spec(doc)
    parsed.diagnostics += [_position(doc, d) for d in imported.diagnostics]
    if imported.spec is None or has_errors(imported.diagnostics):
        return
    _check_imported(doc, imported, parsed)


def _check_imported(doc: Document, imported: kinds.Imported, parsed: ParsedConfig) -> None:
    """Check an importer's spec; each finding points at (and is named by) what produced it."""
    assert imported.spec is not None
    found, config = _check_newest(imported.spec)
    for diag, at_key in found:
        source: ConfigPath | None = imported.source_path(diag.path)
        pos = None
        if source is not None:
            pos = doc.locate_key(source) if at_key else doc.locate(source)
            # Named as the user wrote it, as transpile names it; a MIME part's
            # own path (user data) is not a config path.
            if source[:1] != ("<part>",):
                diag = diag._replace(path=source)
        parsed.diagnostics.append(diag.at(doc.name, pos))
    parsed.spec, parsed.config = imported.spec, config


def _parse_user_data(data: bytes, parsed: ParsedConfig, instance_data: Mapping[str, Any] | None) -> None:
    """cloud-init user data (scripts, MIME, #include, Jinja, gzip): its diagnostics are already positioned."""
    from provision.importers.userdata import to_spec

    imported, doc = to_spec(data, parsed.name, instance_data)
    parsed.document, parsed.kind = doc, "user-data"
    parsed.diagnostics += imported.diagnostics
    if imported.spec is None or has_errors(imported.diagnostics):
        return
    _check_imported(doc, imported, parsed)


def parse_config(data: bytes, name: str, instance_data: Mapping[str, Any] | None = None) -> ParsedConfig:
    """Parse and validate one config of any accepted format.

    ``instance_data`` (cloud-init's instance-data.json shape) is only used by
    Jinja user data; without it, provision.importers.userdata looks for it.
    """
    with cyclic_gc_paused():  # many objects, no cycles: see provision.gcpause
        return _parse_config(data, name, instance_data)


def _parse_config(data: bytes, name: str, instance_data: Mapping[str, Any] | None) -> ParsedConfig:
    from provision.source.loader import load_document

    parsed = ParsedConfig(name)
    if data[:2] == b"\x1f\x8b":
        # gzip (cloud-init accepts it for any user data): what it holds is parsed as itself.
        from provision.importers.userdata.mime import UserDataError, gunzip

        try:
            data = gunzip(data, 1)
        except UserDataError as exc:
            parsed.diagnostics.append(error(f"{exc}").at(name, Position(1, 1)))
            return parsed
    if kinds.is_user_data(data):
        _parse_user_data(data, parsed, instance_data)
        if has_errors(parsed.diagnostics):
            parsed.config = None
        return parsed
    try:
        # cloud-config may carry write_files content as YAML !!binary, as cloud-init reads it.
        binary = data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"#cloud-config")
        doc = _header_only_cloud_config(data, name) or load_document(data, name, binary=binary)
    except ConfigError as exc:
        parsed.diagnostics += exc.diagnostics
        return parsed
    parsed.document = doc
    kind = kinds.recognise(doc)
    parsed.kind = kind
    if kind is None:
        parsed.diagnostics.append(_position(doc, error(
            "not a recognised config",
            hint=f'a provision config starts with {{"provision": {{"version": "{versions.NEWEST}"}}}}; '
            "human YAML (variant: provision), Ignition configs (ignition.version) and #cloud-config "
            "are accepted too",
        )))
    elif kind == "provision":
        _parse_own(doc, parsed)
    elif kinds.importer(kind) is None:
        parsed.diagnostics.append(_position(doc, error(f"{kind} configs are not supported by this build")))
    else:
        _parse_imported(doc, parsed, kind)
    if has_errors(parsed.diagnostics):
        parsed.config = None
    return parsed


def load_config(path: str) -> Config:
    """Read, parse and validate a config file; raise ConfigError on any error."""
    from provision.source.loader import read_config_file

    parsed = parse_config(read_config_file(path), path)
    if parsed.config is None or has_errors(parsed.diagnostics):
        raise ConfigError([d for d in parsed.diagnostics if d.is_error] or parsed.diagnostics)
    return parsed.config
