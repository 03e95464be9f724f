"""NoCloud: ``user-data`` from a filesystem labelled cidata/CIDATA, or from the seed URL
given as ``ds=nocloud;s=SEED`` on the kernel command line (``SEED/user-data``).

The labelled filesystem wins when both exist. A filesystem without
user-data means no config; a seed URL that answers 404 is an error, since
the command line named it.
"""

from __future__ import annotations

from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.configdrive import read_labelled
from provision.platforms.detect import CIDATA_LABELS
from provision.platforms.payload import decode_payload
from provision.platforms.urls import fetch_config_url


def seed_user_data_url(seed: str) -> str:
    return seed if seed.endswith("/user-data") else seed.rstrip("/") + "/user-data"


def fetch(ctx: Context) -> Result:
    local = read_labelled(ctx.settings, CIDATA_LABELS, "user-data", "cidata")
    if isinstance(local, Found):
        return Found(decode_payload(local.data, None, local.source), local.source)
    seed = ctx.settings.kernel.nocloud_seed
    if seed:
        return fetch_config_url(ctx, seed_user_data_url(seed), "nocloud seed")
    return local or NoConfig("nocloud: no cidata filesystem and no ds=nocloud;s= seed")
