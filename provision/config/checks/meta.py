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
    args = config.kernel_arguments
    if args.should_exist or args.should_not_exist:
        # A warning, not an error: Ignition accepts them, and a config may be
        # validated for another engine. Applying them fails (stages/kargs.py).
        yield warning(
            "kernel arguments are not applied by this version of provision: applying this config fails",
            ("kernelArguments",),
            "set kernel arguments in the image's boot loader configuration",
        )
    wanted = set(args.should_exist)
    for i, arg in enumerate(args.should_not_exist):
        if arg in wanted:
            yield error(
                "kernel argument is listed in both shouldExist and shouldNotExist",
                ("kernelArguments", "shouldNotExist", i),
            )


CHECKS = (check_proxy, check_kernel_arguments)
