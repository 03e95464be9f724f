"""Image tarballs fetched now and loaded by a oneshot unit on the first boot.

Each ``containers.preload`` resource is fetched and hash-verified during
provisioning into /var/lib/provision/images/ (0600). A marker file makes
``provision-images-load.service`` run: it loads every tarball with the
runtime's own loader (``docker load``, ``ctr images import`` into nerdctl's
``default`` namespace, ``podman load``), then removes the tarballs and the
marker, so it does its work once. The container units are ordered after it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from provision.config.model import Containers, Resource
from provision.containers.units import PRELOAD_DIR, find_binary, preload_unit
from provision.target.tree import TargetTree

RUNTIME_UNITS = {"docker": "docker.service", "containerd": "containerd.service", "podman": None}


@dataclass(frozen=True)
class PreloadImage:
    path: str
    resource: Resource


def image_path(resource: Resource) -> str:
    key = resource.verification.hash or resource.source or ""
    return f"{PRELOAD_DIR}/image-{hashlib.sha256(key.encode()).hexdigest()[:16]}.tar"


def preload_images(section: Containers) -> list[PreloadImage]:
    images = [PreloadImage(image_path(r), r) for r in section.preload]
    return list({image.path: image for image in images}.values())


def load_command(tree: TargetTree, runtime: str, path: str) -> list[str]:
    if runtime == "docker":
        return [find_binary(tree, "docker", "/usr/bin/docker"), "load", "--input", path]
    if runtime == "containerd":
        return [find_binary(tree, "ctr", "/usr/bin/ctr"), "--namespace", "default", "images", "import", path]
    return [find_binary(tree, "podman", "/usr/bin/podman"), "load", "--input", path]


def load_unit_text(tree: TargetTree, runtime: str, images: list[PreloadImage]) -> str:
    commands = [load_command(tree, runtime, image.path) for image in images]
    return preload_unit(RUNTIME_UNITS[runtime], commands, [image.path for image in images])




def already_in_place(tree: TargetTree, image: PreloadImage) -> bool:
    """True if the tarball is there and matches the resource's verification hash.

    Without a hash there is no way to know short of fetching: it is fetched again.
    """
    expected = image.resource.verification.hash
    if not expected or "-" not in expected:
        return False
    algorithm, _, digest = expected.partition("-")
    if algorithm not in ("sha256", "sha512"):
        return False
    handle = tree.open_read(image.path)
    if handle is None:
        return False
    with handle:
        hasher = hashlib.new(algorithm)
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest() == digest.lower()
