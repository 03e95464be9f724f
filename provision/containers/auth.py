"""Registry credentials in the docker ``config.json`` / containers ``auth.json`` format.

``{"auths": {"<registry>": {"auth": base64("user:password")}}}``, merged into
a file the image may already have (other registries kept), written 0600 in a
0700 directory. Contents are never logged or shown in a plan.
"""

from __future__ import annotations

import base64
from typing import Any

from provision.config.model import RegistryCredential
from provision.containers.files import FileWrite
from provision.containers.merge import json_text, read_json
from provision.target.tree import TargetTree

# The docker CLI files Docker Hub credentials under this key.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def auth_key(registry: str, docker_cli: bool) -> str:
    if docker_cli and registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_KEY
    return registry


def auth_file(
    tree: TargetTree, path: str, credentials: tuple[RegistryCredential, ...], docker_cli: bool
) -> FileWrite:
    existing: dict[str, Any] = read_json(tree, path)
    auths = dict(existing.get("auths") or {})
    for cred in credentials:
        token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        auths[auth_key(cred.registry, docker_cli)] = {"auth": token}
    existing["auths"] = auths
    return FileWrite(path, json_text(existing), mode=0o600, secret=True, what="registry credentials")
