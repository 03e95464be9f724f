"""provision fetch: fetch this machine's config the way first boot would, and print it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.platforms.cli_args import SEAMS_HELP, add_settings_arguments, settings_from_args

if TYPE_CHECKING:
    from provision.config.pipeline import ParsedConfig

HELP = "fetch the config from the platform and print it (secrets redacted)"
DESCRIPTION = """\
Detect the platform (or take --platform / provision.platform=), fetch the
config from it, undo base64/gzip, parse and validate it (provision JSON/YAML,
Ignition 3.x or #cloud-config), and print the resulting provision config as
JSON. Password hashes, registry credentials, key file contents and HTTP
header values are redacted unless --show-secrets is given. Nothing is applied
and nothing at the source is changed.

Exit status: 0 config printed (or the platform has none: a note on stderr),
1 fetch or validation failed, 2 usage error, 75 --offline and the config
needs the network (the flag file <run dir>/neednet was written).

""" + SEAMS_HELP

REDACTED = "<redacted>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser)
    parser.add_argument("--config", metavar="FILE",
                        help="read the config from FILE (platform 'file')")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the config to FILE (mode 0600) instead of stdout")
    parser.add_argument("--offline", action="store_true",
                        help="use only sources that need no network (exit 75 if one is needed)")
    parser.add_argument("--show-secrets", action="store_true",
                        help="do not redact password hashes, credentials and key files")


def _redact_resource(resource: Any) -> None:
    if not isinstance(resource, dict):
        return
    if isinstance(resource.get("source"), str) and resource["source"].startswith("data:"):
        resource["source"] = REDACTED
    for header in resource.get("httpHeaders") or ():
        if isinstance(header, dict) and "value" in header:
            header["value"] = REDACTED


def redact_secrets(node: Any, path: tuple[str, ...] = ()) -> Any:
    """``node`` (a spec dict) with secrets replaced by ``<redacted>``; changes it in place.

    Secrets: ``passwordHash``; registry credential ``password``s; a LUKS
    ``keyFile``'s inline data; every HTTP header value (often a bearer token);
    credentials, query values and fragments of every URL (sources, proxies),
    redacted by the function the HTTP client's own messages use.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            secret = key == "passwordHash" or (key == "password" and "credentials" in path)
            if secret and isinstance(value, str):
                node[key] = REDACTED
            elif key == "keyFile":
                _redact_resource(value)
                redact_secrets(value, here)
            elif key == "httpHeaders" and isinstance(value, list):
                for header in value:
                    if isinstance(header, dict) and "value" in header:
                        header["value"] = REDACTED
            elif isinstance(value, str):
                node[key] = _redact_if_url(value)
            else:
                redact_secrets(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, str):
                node[index] = _redact_if_url(item)
            else:
                redact_secrets(item, path)
    return node


def _redact_if_url(text: str) -> str:
    """A URL (not a data: URL, whose contents are the config's own) as the HTTP client shows it."""
    if "://" not in text or text.startswith("data:"):
        return text
    from provision.fetch.urls import redact_url

    return redact_url(text)


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` with mode 0600, safely even in a directory others can write.

    The text goes to a new temporary file next to ``path`` (O_EXCL and
    O_NOFOLLOW: a planted file or symlink is never opened or followed), which
    then replaces ``path``; rename replaces a symlink at ``path`` itself and
    never writes through it.
    """
    import secrets

    from provision.errors import ProvisionError

    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ProvisionError(f"cannot write {path}: {exc.strerror}") from None
    try:
        for _attempt in range(100):
            tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=dir_fd)
            except FileExistsError:
                continue
            except OSError as exc:
                raise ProvisionError(f"cannot write {path}: {exc.strerror}") from None
            break
        else:
            raise ProvisionError(f"cannot write {path}: no free temporary name")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            if isinstance(exc, OSError):
                raise ProvisionError(f"cannot write {path}: {exc.strerror}") from None
            raise
    finally:
        os.close(dir_fd)


def _print_problems(parsed: ParsedConfig, show_source: bool) -> None:
    from provision.commands.report import print_diagnostics

    # Source lines of fetched user data may hold secrets: quote them only on request.
    sources = {parsed.name: parsed.document.lines} if show_source and parsed.document else None
    print_diagnostics(parsed.diagnostics, "text", sources)


def main(args: argparse.Namespace) -> int:
    from provision.config.pipeline import parse_config
    from provision.diagnostics import has_errors
    from provision.errors import UsageError
    from provision.fetch.configrefs import resolve_references
    from provision.platforms.acquire import (
        NEED_NETWORK_EXIT,
        acquire_config,
        references_need_network,
        write_neednet_flag,
    )
    from provision.platforms.base import Context

    if args.config and args.platform not in (None, "file"):
        raise UsageError("--config FILE implies --platform file")
    settings = settings_from_args(args)
    context = Context(settings)
    outcome = acquire_config(settings, offline=args.offline, context=context)
    if outcome.extras:  # names and sizes only: they may hold secrets
        kept = ", ".join(f"{name} ({len(data)} bytes)" for name, data in outcome.extras.items())
        print(f"provision fetch: the platform also provided {kept}", file=sys.stderr)
    if outcome.status == "none" or (outcome.status == "config" and outcome.data is None):
        print(f"provision fetch: platform {outcome.platform} provides no config: "
              f"{outcome.source}", file=sys.stderr)
        return 0
    if outcome.status == "config":
        assert outcome.data is not None
        parsed = parse_config(outcome.data, outcome.source)
        if parsed.spec is None or has_errors(parsed.diagnostics):
            _print_problems(parsed, args.show_secrets)
            print(f"provision fetch: the config from {outcome.source} is invalid", file=sys.stderr)
            return 1
        if not (args.offline and references_need_network(parsed.spec)):
            spec = resolve_references(parsed, context.client).spec
            from provision.boot.imageconfig import with_base_configs

            def report(line: str) -> None:
                print(f"provision fetch: {line}", file=sys.stderr)

            return _emit(with_base_configs(settings, outcome.platform, spec, report), args)
        write_neednet_flag(settings, "the config references other configs over the network")
    print(f"provision fetch: needs the network: {outcome.source} "
          f"(flag written to {settings.neednet_flag})", file=sys.stderr)
    return NEED_NETWORK_EXIT


def _emit(spec: dict[str, Any], args: argparse.Namespace) -> int:
    if not args.show_secrets:
        spec = redact_secrets(spec)
    text = json.dumps(spec, indent=2) + "\n"
    if args.output:
        _write_private(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0
