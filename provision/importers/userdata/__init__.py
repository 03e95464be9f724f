"""cloud-init user data in any of its formats, translated into provision's spec.

The bytes are split into typed parts (``mime``); each part is handled as
cloud-init handles it:

- text/cloud-config parts are merged by cloud-init's merge rules (``merge``)
  and the result is translated by the #cloud-config importer;
- ``## template: jinja`` parts are rendered against the instance data
  (``jinja``) and then handled as the type their output starts with;
- scripts and boothooks become files and units (``scripts``);
- ``#include`` lists and text/x-include-url parts become config references
  (``include``), fetched by provision's HTTP client;
- text/cloud-config-archive parts are unpacked into more parts;
- everything else (part handlers, upstart jobs, JSON patches, plain text) is
  refused with a diagnostic at the part.

Every diagnostic points into the original document: each part knows its
first line there, and the merged cloud-config knows which part and line
each of its values came from.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from provision.config.kinds import Imported
from provision.diagnostics import ConfigPath, Diagnostic, Position, error, warning
from provision.errors import ConfigError
from provision.importers.userdata import mime
from provision.importers.userdata.merge import (
    DEFAULT,
    Merged,
    MergeSpecError,
    parse_merge_list,
    parse_merge_string,
)
from provision.importers.userdata.scripts import Script
from provision.source.document import Document

# Where the booted platform layer leaves cloud-init-style instance data for templates.
INSTANCE_DATA_FILE = "/run/provision/instance-data.json"
INSTANCE_DATA_ENV = "PROVISION_INSTANCE_DATA"
PART = "<part>"  # config paths ("<part>", n) name part n as a whole
# Archives in archives, templates rendering templates: a crafted document could nest without end.
MAX_NESTING = 8

_SCRIPT_KINDS = {
    "text/x-shellscript": "per-instance",
    "text/x-shellscript-per-instance": "per-instance",
    "text/x-shellscript-per-once": "per-instance",
    "text/x-shellscript-per-boot": "per-boot",
}
_REFUSED = {
    "text/part-handler": "part handlers are Python code run by cloud-init to handle other parts; "
                         "provision runs no user-supplied code while provisioning",
    "text/upstart-job": "upstart is gone; write a systemd unit (systemd.units) instead",
    "text/cloud-config-jsonp": "JSON-patch cloud-config is not supported; send the patched #cloud-config",
    mime.NOT_MULTIPART: "the user data is not in a format cloud-init or provision knows (cloud-init ignores it)",
    "text/plain": "a text/plain part that is not in any user-data format (cloud-init ignores it)",
}


def load_instance_data() -> Mapping[str, Any] | None:
    """cloud-init-style instance data written at boot, or named by $PROVISION_INSTANCE_DATA."""
    path = os.environ.get(INSTANCE_DATA_ENV) or INSTANCE_DATA_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _Translation:
    def __init__(self, name: str, text: str, instance_data: Mapping[str, Any] | None) -> None:
        self.name = name
        self.text = text
        self.instance_data = instance_data
        self.parts: list[mime.Part] = []
        self.part_docs: dict[int, Document] = {}
        self.merged = Merged()
        self.scripts: list[Script] = []
        self.includes: list[tuple[str, ConfigPath]] = []
        self.diagnostics: list[Diagnostic] = []
        # Names this document's scripts apart from an included document's (scripts.add_scripts).
        self.tag = hashlib.sha256(text.encode()).hexdigest()[:8]
        self.depth = 0  # archives and templates being unpacked right now

    # -- positions ----------------------------------------------------------

    def part_position(self, index: int) -> Position:
        return Position(self.parts[index].line, 1)

    def original_line(self, index: int, line_in_part: int) -> int:
        """The line of the original document that line ``line_in_part`` of part ``index`` came from."""
        part = self.parts[index]
        if not part.exact:
            return part.line
        if part.line_map:  # a rendered template: output line -> template line
            line_in_part = part.line_map[min(max(line_in_part, 1), len(part.line_map)) - 1]
        return part.line + line_in_part - 1

    def at_part(self, index: int, line_in_part: int = 1) -> Position:
        return Position(self.original_line(index, line_in_part), 1)

    def locate(self, path: ConfigPath, want_key: bool) -> Position | None:
        if path[:1] == (PART,) and len(path) >= 2 and isinstance(path[1], int):
            line = path[2] if len(path) > 2 and isinstance(path[2], int) else 1
            return self.at_part(path[1], line)
        found = self.merged.origin(path)
        if found is None:
            return Position(1, 1)
        index, where = found
        part = self.parts[index]
        doc = self.part_docs[index]
        pos = doc.locate_key(where) if want_key else doc.locate(where)
        if pos is None or not part.exact:
            return Position(part.line, 1)
        # A rendered line's column may have moved with the values substituted before it.
        return Position(self.original_line(index, pos.line), pos.column if not part.line_map else 1)

    def problem(self, diag: Diagnostic, index: int, line_in_part: int = 1) -> None:
        """A finding about a part as a whole (no config path), at its line."""
        self.diagnostics.append(diag.at(self.name, self.at_part(index, line_in_part)))

    # -- parts --------------------------------------------------------------

    def handle(self, part: mime.Part, index: int | None = None) -> None:
        """Handle a new part, or (``index`` given) a part replaced by its rendering."""
        fresh = index is None
        if index is None:
            index = len(self.parts)
            self.parts.append(part)
        else:
            self.parts[index] = part
        kind = part.content_type
        if self.depth > MAX_NESTING:
            self.problem(error(f"archives or templates nested more than {MAX_NESTING} deep"), index)
            return
        if kind == "text/cloud-config":
            self.cloud_config(part, index)
        elif kind == "text/jinja2":
            self.jinja(part, index)
        elif kind in _SCRIPT_KINDS:
            self.script(part, index, _SCRIPT_KINDS[kind])
        elif kind == "text/cloud-boothook":
            self.boothook(part, index)
        elif kind in ("text/x-include-url", "text/x-include-once-url"):
            self.include(part, index)
        elif kind == "text/cloud-config-archive":
            self.archive(part, index)
        elif kind in _REFUSED:
            severity = warning if kind in (mime.NOT_MULTIPART, "text/plain") else error
            self.problem(severity(f"{kind} user data is not supported: {_REFUSED[kind]}"), index)
        else:
            self.problem(error(f"user-data part of type {kind} is not supported",
                               hint="cloud-init and provision handle text/cloud-config, text/x-shellscript, "
                                    "text/cloud-boothook, text/x-include-url, text/cloud-config-archive, "
                                    "text/jinja2 and gzip-compressed parts"), index)
        if fresh and part.headers.get("launch-index") is not None:
            self.problem(warning("Launch-Index is not supported: the part applies to every instance"), index)

    def nested(self, part: mime.Part, index: int | None = None) -> None:
        """Handle a part found inside another (an archive entry, a rendered template)."""
        self.depth += 1
        try:
            self.handle(part, index)
        finally:
            self.depth -= 1

    def cloud_config(self, part: mime.Part, index: int) -> None:
        from provision.source.loader import load_document

        lines = part.payload.decode("utf-8", "replace").splitlines()
        if all(not line.strip() or line.lstrip().startswith("#") for line in lines):
            # cloud-init skips it too ("empty cloud config"); say so, in case it was meant to hold keys.
            self.problem(warning("this cloud-config part is empty (only comments): nothing to do"), index)
            return
        try:
            doc = load_document(part.payload, self.name, binary=True)
        except ConfigError as exc:
            for diag in exc.diagnostics:
                line = diag.position.line if diag.position else 1
                self.diagnostics.append(diag.at(self.name, self.at_part(index, line)))
            return
        value = doc.value
        if value is None:
            return  # a header-only part: an empty config
        if not isinstance(value, dict):
            self.problem(error("a cloud-config part must be a mapping of keys"), index)
            return
        self.part_docs[index] = doc
        mergers_text: Any = value.get("merge_how", value.get("merge_type"))
        header = part.headers.get("merge-type") or part.headers.get("x-merge-type")
        try:
            if mergers_text is not None:
                mergers = parse_merge_list(mergers_text)
            else:
                mergers = parse_merge_string(header or DEFAULT)
        except MergeSpecError as exc:
            key = "merge_how" if "merge_how" in value else "merge_type"
            self.problem(error(f"cannot merge this part: {exc}"), index,
                         (doc.locate((key,)) or Position(1, 1)).line if mergers_text is not None else 1)
            return
        body = {k: v for k, v in value.items() if k not in ("merge_how", "merge_type")}
        self.merged.add(index, body, mergers)

    def jinja(self, part: mime.Part, index: int) -> None:
        from provision.importers.userdata.jinja import TemplateError, render_with_lines

        if self.instance_data is None:
            self.problem(error(
                "a Jinja template needs the instance's data, and none is available here",
                hint=f"at boot provision reads {INSTANCE_DATA_FILE}; elsewhere name a cloud-init "
                     f"instance-data.json in ${INSTANCE_DATA_ENV}"), index)
            return
        text = part.payload.decode("utf-8", "replace")
        _, _, body = text.partition("\n")
        try:
            rendered, line_map = render_with_lines(body, self.instance_data)
        except TemplateError as exc:
            self.problem(error(f"cannot render the Jinja template: {exc}"), index, exc.line + 1)
            return
        payload = rendered.encode()
        kind = mime.type_from_start(payload)
        if kind is None:
            self.problem(error("the rendered Jinja template is not user data: it must start with "
                               "#cloud-config, #! or another user-data marker"), index, 2)
            return
        # Each rendered line knows its template line, so positions stay in the original document.
        self.nested(part._replace(content_type=kind, payload=payload, line=part.line + 1 if part.exact else part.line,
                                  line_map=tuple(line_map) if part.exact else ()), index)

    def script(self, part: mime.Part, index: int, kind: str) -> None:
        if not part.payload.lstrip().startswith(b"#!"):
            # cloud-init executes the file, which fails with "Exec format error".
            self.problem(error("a script must start with a #! line (cloud-init executes it directly)",
                               hint="e.g. #!/bin/sh"), index)
            return
        self.scripts.append(Script(kind, part.filename or f"part-{index + 1:03d}", part.payload, (PART, index)))

    def boothook(self, part: mime.Part, index: int) -> None:
        text = part.payload.replace(b"\r\n", b"\n")
        _, _, body = text.lstrip().partition(b"\n")
        if not body.startswith(b"#!"):
            self.problem(error("a boothook must start with a #! line after #cloud-boothook",
                               hint="e.g. #!/bin/sh; cloud-init executes the boothook file directly"), index, 2)
            return
        self.scripts.append(Script("boothook", part.filename or f"boothook-{index + 1:03d}", body, (PART, index)))

    def include(self, part: mime.Part, index: int) -> None:
        from provision.importers.userdata.include import urls

        found, bad = urls(part.payload.decode("utf-8", "replace"))
        for item in bad:
            self.problem(error(f"cannot include {item.text!r}: {item.reason}"), index, item.line)
        for url in found:
            self.includes.append((url.url, (PART, index, url.line)))

    def archive(self, part: mime.Part, index: int) -> None:
        from provision.source.loader import load_document

        try:
            doc = load_document(part.payload, self.name)
        except ConfigError as exc:
            for diag in exc.diagnostics:
                line = diag.position.line if diag.position else 1
                self.diagnostics.append(diag.at(self.name, self.at_part(index, line)))
            return
        entries = doc.value if isinstance(doc.value, list) else None
        if entries is None:
            self.problem(error("a cloud-config-archive must be a list of parts"), index)
            return
        for i, entry in enumerate(entries):
            pos = doc.locate((i,))
            line = self.at_part(index, pos.line if pos else 1).line
            if isinstance(entry, str):
                entry = {"content": entry}
            if not isinstance(entry, dict):
                self.problem(error("an archive entry must be a string or a mapping with content"), index,
                             pos.line if pos else 1)
                continue
            content = entry.get("content", "")
            payload = content if isinstance(content, bytes) else str(content).encode()
            kind = str(entry.get("type") or mime.type_from_start(payload, "text/cloud-config")).lower()
            headers = {str(k).lower(): str(v) for k, v in entry.items() if k not in ("content", "type")}
            self.nested(mime.Part(kind, payload, line, False, headers, entry.get("filename")))


def to_spec(data: bytes, name: str, instance_data: Mapping[str, Any] | None = None) -> tuple[Imported, Document]:
    """Translate user data; diagnostics carry positions in the (decompressed) document."""
    if instance_data is None:
        instance_data = load_instance_data()
    if data[:2] == mime.GZIP_MAGIC:
        # Positions then refer to the decompressed text: the one its author wrote.
        try:
            data = mime.gunzip(data, 1)
        except mime.UserDataError as exc:
            doc = Document(name, "", None, "yaml")
            return Imported(None, [error(str(exc)).at(name, Position(1, 1))]), doc
    from provision.source.loader import MAX_CONFIG_BYTES

    if len(data) > MAX_CONFIG_BYTES:  # after gunzip too: the limit is on what is parsed
        doc = Document(name, "", None, "yaml")
        return Imported(None, [error(f"user data is larger than {MAX_CONFIG_BYTES >> 20} MiB").at(
            name, Position(1, 1))]), doc
    text = data.decode("utf-8", "replace")
    work = _Translation(name, text, instance_data)
    doc = Document(name, text, None, "yaml", work.locate)
    try:
        parts = mime.split(data)
    except mime.UserDataError as exc:
        return Imported(None, [error(str(exc)).at(name, Position(exc.line, 1))]), doc
    for part in parts:
        work.handle(part)
    doc.value = work.merged.value
    return _translate(work, doc), doc


def _translate(work: _Translation, doc: Document) -> Imported:
    from provision.importers.cloudconfig import translate, with_version
    from provision.importers.cloudconfig.context import Context
    from provision.importers.userdata.scripts import add_scripts

    ctx = Context(doc)
    translate(ctx, work.merged.value)
    v1 = work.instance_data.get("v1") if work.instance_data else None
    instance_id = v1.get("instance_id") if isinstance(v1, dict) else None
    add_scripts(ctx, work.scripts, str(instance_id) if instance_id is not None else None, work.tag)
    spec: dict[str, Any] = with_version(ctx.spec)
    if work.includes:
        spec["provision"]["config"] = {"merge": [{"source": url} for url, _ in work.includes]}
        for i, (_, where) in enumerate(work.includes):
            ctx.origins.record(("provision", "config", "merge", i), where)
    diagnostics = work.diagnostics + [d if d.position else d.at(doc.name, doc.locate(d.path))
                                      for d in ctx.diagnostics]
    return Imported(spec, diagnostics, ctx.origins.source_path)
