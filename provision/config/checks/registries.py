"""Checks on container registries and daemon settings. Messages never quote
credentials."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import check_path, duplicate_errors
from provision.diagnostics import Diagnostic, error


def check_registries(config: model.Config) -> Iterator[Diagnostic]:
    registries = config.containers.registries
    yield from duplicate_errors(
        ((c.registry, ("containers", "registries", "credentials", i, "registry"))
         for i, c in enumerate(registries.credentials)),
        "registry in credentials",
    )  # fmt: skip
    yield from duplicate_errors(
        ((m.registry, ("containers", "registries", "mirrors", i, "registry"))
         for i, m in enumerate(registries.mirrors)),
        "mirrored registry",
    )  # fmt: skip
    for i, mirror in enumerate(registries.mirrors):
        for j, endpoint in enumerate(mirror.endpoints):
            if _endpoint_problem(endpoint):
                yield error(
                    "mirror endpoint must be an http or https URL with a host",
                    ("containers", "registries", "mirrors", i, "endpoints", j),
                    "e.g. https://mirror.example:5000",
                )
    for i, host in enumerate(registries.insecure):
        if "://" in host or "/" in host or not host:
            yield error(
                "insecure registry is host[:port], not a URL",
                ("containers", "registries", "insecure", i),
            )


def _endpoint_problem(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return True
    return parts.scheme not in ("http", "https") or not parts.hostname


def check_settings(config: model.Config) -> Iterator[Diagnostic]:
    data_root = config.containers.settings.data_root
    if data_root is not None:
        yield from check_path(data_root, ("containers", "settings", "dataRoot"))


CHECKS = (check_registries, check_settings)
