"""Azure Stack Hub: custom data from the provisioning media only (``ovf-env.xml``).

Azure Stack has no IMDS ``userData``; Ignition reads the media alone, and so
do we. No media, or media without CustomData, means no config.
"""

from __future__ import annotations

from provision.platforms.azure import custom_data
from provision.platforms.base import Context, NoConfig, Result


def fetch(ctx: Context) -> Result:
    return custom_data(ctx) or NoConfig(
        "azurestack: no provisioning media with ovf-env.xml at /dev/sr0 or /dev/sr1")
