"""The instance's attributes from its platform, normalised across platforms.

Collected by the fetch phases (:mod:`provision.instance.collect`) and kept in
the run directory as ``instance.json``; read by the stages that act on them
and by the boot's success/failure report. SSH public keys are public, but the
report URLs may carry tokens, so the file is private (0600) like the rest of
the run directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PublicKey:
    """One SSH public key; ``user`` is set where the platform names an owner (GCE)."""

    key: str
    user: str | None = None


@dataclass(frozen=True)
class InstanceData:
    platform: str
    instance_id: str | None = None
    local_hostname: str | None = None
    region: str | None = None
    zone: str | None = None
    ipv4_private: str | None = None
    ipv4_public: str | None = None
    public_keys: tuple[PublicKey, ...] = ()
    # Where the platform wants to hear how provisioning went (Equinix Metal's
    # phone_home_url / user_state_url); keyed by report kind.
    report_urls: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["public_keys"] = [asdict(k) for k in self.public_keys]
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> InstanceData:
        known = {f.name for f in fields(cls)}
        args = {k: v for k, v in value.items() if k in known}
        args["public_keys"] = tuple(
            PublicKey(str(k["key"]), k.get("user")) for k in value.get("public_keys", ())
        )
        args["report_urls"] = dict(value.get("report_urls") or {})
        return cls(**args)

    def keys_for(self, user: str | None) -> list[str]:
        """The keys meant for ``user`` (the image's default user): unnamed keys, and on
        GCE the keys named for that user or for ``cloudinit``, as cloud-init does."""
        wanted = {"cloudinit", user} if user else {"cloudinit"}
        return [k.key for k in self.public_keys if k.user is None or k.user in wanted]


def read_instance(path: Path) -> InstanceData | None:
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return InstanceData.from_json(value) if isinstance(value, dict) else None
