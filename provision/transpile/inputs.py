"""One transpile input: read, recognised, translated to a machine spec, with its origins.

Any config provision reads is an input: human YAML, provision JSON/YAML,
Ignition 3.x or #cloud-config. Each is translated by its importer (the
pipeline's own detection), but not yet validated as a whole: the merged
output is, once, and its diagnostics are mapped back to the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic, Position, has_errors
from provision.source.document import Document


def _identity(path: ConfigPath) -> ConfigPath | None:
    return path


@dataclass
class Input:
    name: str
    document: Document | None = None
    kind: str | None = None
    spec: dict[str, Any] | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source_path: Callable[[ConfigPath], ConfigPath | None] = _identity

    def position(self, spec_path: ConfigPath) -> Position | None:
        """Where in this input the spec path came from."""
        if self.document is None:
            return None
        source = self.source_path(spec_path)
        return None if source is None else self.document.locate(source)


def _positioned(doc: Document, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d if d.position is not None else d.at(doc.name, doc.locate(d.path)) for d in diagnostics]


def _importer_kind(doc: Document | None) -> str | None:
    """The importer for ``doc``; None for provision's own format (or nothing known).

    Unlike the pipeline, the importers are asked before a ``provision`` key
    means machine format: human YAML may have a ``provision:`` section, and
    ``variant`` says which it is.
    """
    from provision.config import kinds

    if doc is None:
        return None
    kind = kinds.recognise(doc)
    return None if kind in (None, "provision") else kind


def load_input(data: bytes, name: str, files_dir: str | None) -> Input:
    """Translate one input; errors are diagnostics, never exceptions."""
    from provision.config import kinds
    from provision.config.pipeline import parse_config
    from provision.errors import ConfigError
    from provision.importers.human import default_files_dir, using_files_dir
    from provision.source.loader import load_document

    try:
        doc: Document | None = load_document(data, name)
    except ConfigError:
        doc = None
    kind = _importer_kind(doc)
    module = kinds.importer(kind) if kind is not None else None
    if doc is None or module is None:
        # provision's own format, or nothing recognisable: the pipeline says which, and validates.
        parsed = parse_config(data, name)
        return Input(name, parsed.document, parsed.kind, parsed.spec, parsed.diagnostics)
    found = Input(name, doc, kind)
    with using_files_dir(files_dir if files_dir is not None else default_files_dir(name)):
        imported = module.to_spec(doc)
    found.diagnostics = _positioned(doc, imported.diagnostics)
    found.source_path = imported.source_path
    if imported.spec is not None and not has_errors(imported.diagnostics):
        found.spec = imported.spec
    return found
