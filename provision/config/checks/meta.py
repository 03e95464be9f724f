"""Checks on the provision section (proxies) and kernel arguments."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.diagnostics import Diagnostic, error, warning


def _proxy_problem(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "unable to parse proxy URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "proxies must be http(s) URLs"
    if not parts.hostname:
        return "proxy URL has no host"
    return None


def check_proxy(config: model.Config) -> Iterator[Diagnostic]:
    proxy = config.provision.proxy
    for key, url in (("httpProxy", proxy.http_proxy), ("httpsProxy", proxy.https_proxy)):
        if not url:
            continue
        problem = _proxy_problem(url)
        if problem:
            yield error(problem, ("provision", "proxy", key), "e.g. http://proxy.example:3128")


def check_kernel_arguments(config: model.Config) -> Iterator[Diagnostic]:
    """Arguments are compared whole (provision.bootloader), so some can never match."""
    args = config.kernel_arguments
    if not args.should_exist and not args.should_not_exist:
        return
    from provision.bootloader.cmdline import split_args

    for key, values in (("shouldExist", args.should_exist), ("shouldNotExist", args.should_not_exist)):
        for i, arg in enumerate(values):
            where = ("kernelArguments", key, i)
            words = split_args(arg)
            if len(words) != 1:
                yield warning(
                    "this is not one kernel argument: arguments are compared whole, so it never matches",
                    where, "list each argument separately" if words else "remove the empty entry",
                )
            elif arg.split("=", 1)[0] == "provision.firstboot":
                yield warning(
                    "provision.firstboot is the boot loader's first-boot flag (docs/embedding.md); "
                    "setting it in the entries makes every boot a first boot",
                    where,
                )
    wanted = set(args.should_exist)
    for i, arg in enumerate(args.should_not_exist):
        if arg in wanted:
            yield error(
                "kernel argument is listed in both shouldExist and shouldNotExist",
                ("kernelArguments", "shouldNotExist", i),
            )


CHECKS = (check_proxy, check_kernel_arguments)
