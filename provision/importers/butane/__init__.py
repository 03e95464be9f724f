"""Butane configs (variants fcos, flatcar, openshift, r4e, fiot), read as they are.

A Butane document is translated to the Ignition config Butane itself would
produce — the spec version its variant and version target, with every bit
of sugar expanded the way Butane expands it — and that Ignition config is
then imported like any other (provision.importers.ignition): checked
against its own version's schema, translated to provision's spec. Every
diagnostic, including those about the generated Ignition JSON, points at
the YAML line that produced it.

Modules: ``variants`` (the table of variants and versions), ``walk`` (keys
and inline sugar), ``resources``, ``trees``, ``mounts``, ``bootdevice``
(sugar expanders), ``openshift`` (field filters, MachineConfig sections),
``translate`` (the order it all happens in).

Local files (``local``, ``storage.trees``, ``contents_local``,
``ssh_authorized_keys_local``) are read from the files directory, as for
provision's human YAML: ``--files-dir``, else the config file's folder; a
config that is not a file on disk (user data fetched at boot) has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from provision.config.kinds import Imported
from provision.diagnostics import ConfigPath, Diagnostic, has_errors
from provision.source.document import Document


class Translation(NamedTuple):
    ignition: dict[str, Any] | None  # None after errors
    spec_version: str | None
    diagnostics: list[Diagnostic]  # positioned in the Butane document
    source_path: Callable[[ConfigPath], ConfigPath | None]  # Ignition path -> YAML path


def to_ignition(document: Document) -> Translation:
    """The Ignition config Butane would produce for ``document`` (not yet schema-checked)."""
    from provision.importers.butane.translate import to_ignition as translate
    from provision.importers.human import files_dir_for
    from provision.importers.human.context import Context

    ctx = Context(document, files_dir_for(document.name))
    if not isinstance(document.value, dict):
        ctx.bad("a Butane config is a mapping", ())
        return Translation(None, None, ctx.diagnostics, ctx.origins.source_path)
    found = translate(document.value, ctx)
    if found is None or has_errors(ctx.diagnostics):
        return Translation(None, found[1].spec if found else None, ctx.diagnostics, ctx.origins.source_path)
    return Translation(found[0], found[1].spec, ctx.diagnostics, ctx.origins.source_path)


def to_spec(document: Document) -> Imported:
    from provision.importers.ignition import ignition_path, import_value

    translation = to_ignition(document)
    if translation.ignition is None or translation.spec_version is None:
        return Imported(None, translation.diagnostics)

    def yaml_path(spec_path: ConfigPath) -> ConfigPath | None:
        return translation.source_path(ignition_path(spec_path))

    spec, found = import_value(translation.ignition, translation.spec_version)
    diagnostics = list(translation.diagnostics)
    for diag, at_key in found:
        source = translation.source_path(diag.path)
        pos = None
        if source is not None:
            pos = document.locate_key(source) if at_key else document.locate(source)
        diagnostics.append(diag.at(document.name, pos)._replace(path=source if source is not None else diag.path))
    return Imported(spec, diagnostics, yaml_path)
