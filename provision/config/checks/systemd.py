"""Checks on systemd units and drop-ins: names, contents, enablement."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from provision.config import model
from provision.config.checks._common import duplicate_errors
from provision.diagnostics import ConfigPath, Diagnostic, error, warning
from provision.systemd_unit import (
    MAX_UNIT_NAME,
    UnitFile,
    UnitSyntaxError,
    install_problems,
    parse_unit,
    unit_name_problem,
)


def template_of(name: str) -> str | None:
    """foo@bar.service -> foo@.service; None for a name that is not an instance."""
    stem, _, suffix = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return f"{prefix}@.{suffix}" if at and instance else None


def is_template(name: str) -> bool:
    return name.rpartition(".")[0].endswith("@")


def check_unit_names(config: model.Config) -> Iterator[Diagnostic]:
    units = config.systemd.units
    for i, unit in enumerate(units):
        problem = unit_name_problem(unit.name)
        if problem:
            yield error(
                problem, ("systemd", "units", i, "name"), "e.g. web.service, backup@daily.timer"
            )
    yield from duplicate_errors(
        ((u.name, ("systemd", "units", i, "name")) for i, u in enumerate(units)), "unit name"
    )


def check_dropin_names(config: model.Config) -> Iterator[Diagnostic]:
    for i, unit in enumerate(config.systemd.units):
        base: ConfigPath = ("systemd", "units", i, "dropins")
        for j, dropin in enumerate(unit.dropins):
            name = dropin.name
            if not name.endswith(".conf") or name == ".conf":
                yield error(
                    "invalid systemd drop-in extension; drop-ins end in .conf", (*base, j, "name")
                )
            elif "/" in name or "\0" in name or name.startswith("."):
                yield error("drop-in name must be a plain file name", (*base, j, "name"))
            elif len(name.encode("utf-8", "surrogatepass")) > MAX_UNIT_NAME:
                yield error(f"drop-in name is longer than {MAX_UNIT_NAME} bytes", (*base, j, "name"))
        yield from duplicate_errors(
            ((d.name, (*base, j, "name")) for j, d in enumerate(unit.dropins)), "drop-in name"
        )


@lru_cache(maxsize=256)
def _parsed(contents: str) -> UnitFile | UnitSyntaxError:
    """Each text is parsed once although several checks look at it."""
    try:
        return parse_unit(contents)
    except UnitSyntaxError as exc:
        return exc


def _syntax_error(contents: str | None, where: ConfigPath, what: str) -> Iterator[Diagnostic]:
    result = _parsed(contents) if contents else None
    if isinstance(result, UnitSyntaxError):
        yield error(f"invalid {what} contents: line {result.line}: {result.message}", where)


def check_unit_contents(config: model.Config) -> Iterator[Diagnostic]:
    for i, unit in enumerate(config.systemd.units):
        where: ConfigPath = ("systemd", "units", i)
        yield from _syntax_error(unit.contents, (*where, "contents"), "unit")
        for j, dropin in enumerate(unit.dropins):
            yield from _syntax_error(dropin.contents, (*where, "dropins", j, "contents"), "drop-in")


def _unit_file(contents: str | None) -> UnitFile | None:
    """The parsed text; None when absent or unparsable (reported elsewhere)."""
    result = _parsed(contents) if contents else None
    return result if isinstance(result, UnitFile) else None


def check_enabled_install(config: model.Config) -> Iterator[Diagnostic]:
    """Enabling a unit without an [Install] section does nothing."""
    by_name = {u.name: u for u in config.systemd.units}
    for i, unit in enumerate(config.systemd.units):
        if not unit.enabled:
            continue
        where: ConfigPath = ("systemd", "units", i, "enabled")
        parsed = _unit_file(unit.contents)
        if parsed is not None and not parsed.has_section("Install"):
            yield warning(
                f'unit "{unit.name}" is enabled, but has no [Install] section so enable does nothing',
                where,
                "add e.g. [Install] WantedBy=multi-user.target",
            )
        elif (
            parsed is not None
            and is_template(unit.name)
            and not parsed.values("Install", "DefaultInstance")
        ):
            yield warning(
                f'template unit "{unit.name}" is enabled without DefaultInstance=',
                where,
                f"enable an instance instead, e.g. {unit.name.replace('@.', '@name.')}",
            )
        template = by_name.get(template_of(unit.name) or "")
        template_file = _unit_file(template.contents) if template and not unit.contents else None
        if template and template_file is not None and not template_file.has_section("Install"):
            yield warning(
                f'template unit "{template.name}" for "{unit.name}" has no [Install] section',
                where,
            )


def _install_diagnostics(contents: str | None, unit: str, where: ConfigPath) -> Iterator[Diagnostic]:
    parsed = _unit_file(contents)
    if parsed is None:
        return
    for problem in install_problems(parsed, unit):
        message = f"line {problem.line}: {problem.key}={problem.value}: {problem.message}"
        if problem.fatal:
            yield error(message, where, "[Install] names become link names in /etc/systemd/system; "
                        "give unit names such as multi-user.target")
        else:
            yield warning(message, where)


def check_install_names(config: model.Config) -> Iterator[Diagnostic]:
    """[Install] values that would name a link outside the unit directory (or no unit at all)."""
    for i, unit in enumerate(config.systemd.units):
        where: ConfigPath = ("systemd", "units", i)
        yield from _install_diagnostics(unit.contents, unit.name, (*where, "contents"))
        for j, dropin in enumerate(unit.dropins):
            yield from _install_diagnostics(dropin.contents, unit.name, (*where, "dropins", j, "contents"))


def check_nul_in_contents(config: model.Config) -> Iterator[Diagnostic]:
    """systemd refuses a unit file holding NUL; so would the write of a C string."""
    for i, unit in enumerate(config.systemd.units):
        where: ConfigPath = ("systemd", "units", i)
        if unit.contents and "\0" in unit.contents:
            yield error("unit contents contain a NUL character", (*where, "contents"))
        for j, dropin in enumerate(unit.dropins):
            if dropin.contents and "\0" in dropin.contents:
                yield error("drop-in contents contain a NUL character", (*where, "dropins", j, "contents"))


CHECKS = (
    check_unit_names, check_dropin_names, check_unit_contents, check_enabled_install,
    check_install_names, check_nul_in_contents,
)
