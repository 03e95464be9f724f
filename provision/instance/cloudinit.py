"""The instance's attributes in cloud-init's instance-data.json shape.

Jinja user data (``## template: jinja``) is rendered against this document
(provision/importers/userdata/jinja.py), so the fetch phase builds it from
the platform's metadata before it parses the user data, and keeps it as
/run/provision/instance-data.json for the configs it fetches later (an
``#include`` of a template) and for the booted system.

Only the ``v1`` keys provision knows are filled, each under both of
cloud-init's spellings (``instance_id`` and ``instance-id``); a key the
platform did not give is absent, so a template that uses it fails at its line
instead of rendering a placeholder. ``ds`` (the datasource's raw metadata)
is not provided.
"""

from __future__ import annotations

from typing import Any

from provision.instance.data import InstanceData

# provision's platform name -> (cloud-init's cloud_name, cloud-init's platform),
# where cloud-init's names differ from provision's.
_CLOUD_INIT_NAMES = {
    "aws": ("aws", "ec2"),
    "gcp": ("gce", "gce"),
    "nocloud": ("nocloud", "nocloud"),
    "openstack": ("openstack", "openstack"),
    "azure": ("azure", "azure"),
    "digitalocean": ("digitalocean", "digitalocean"),
    "hetzner": ("hetzner", "hetzner"),
    "packet": ("equinix", "equinix"),
}


def instance_data_document(instance: InstanceData) -> dict[str, Any]:
    cloud_name, platform = _CLOUD_INIT_NAMES.get(instance.platform, (instance.platform, instance.platform))
    v1: dict[str, Any] = {"cloud_name": cloud_name, "platform": platform,
                          "public_ssh_keys": [k.key for k in instance.public_keys]}
    for key, value in (("instance_id", instance.instance_id), ("local_hostname", instance.local_hostname),
                       ("region", instance.region), ("availability_zone", instance.zone)):
        if value is not None:
            v1[key] = value
    for key in ("cloud_name", "instance_id", "local_hostname", "availability_zone"):
        if key in v1:
            v1[key.replace("_", "-")] = v1[key]
    return {"v1": v1}
