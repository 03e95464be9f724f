"""The ``file`` platform: a config from a local file (``--config FILE``)."""

from __future__ import annotations

from provision.errors import FetchError, UsageError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload


def fetch(ctx: Context) -> Result:
    path = ctx.settings.config_file
    if path is None:
        raise UsageError("platform 'file' needs a config file (--config FILE)")
    from provision.source.loader import MAX_CONFIG_BYTES, read_regular_file

    try:
        # One byte past the cap: parsing then says the config is too large.
        data = read_regular_file(str(path), MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise FetchError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise FetchError(f"cannot read config file {path}: {exc.strerror}") from None
    if not data.strip():
        return NoConfig(f"config file {path} is empty")
    return Found(decode_payload(data, None, str(path)), str(path))
