"""The ``network`` key of a #cloud-config: cloud-init network config v1 or v2, inline."""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context


def translate_cloud_config_network(ctx: Context, value: Any, where: ConfigPath) -> None:
    from provision.importers import network

    # The key's value is the network config itself ({version: 1, config: [...]} or v2).
    if not isinstance(value, dict):
        ctx.bad("network must be a mapping (network config version 1 or 2)", where)
        return
    network.translate(ctx, value, where)
