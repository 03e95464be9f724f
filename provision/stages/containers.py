"""The containers stage: runtime configuration, registry credentials, container units, preloads.

Planning reads the files the image ships, merges our settings into them and
computes every file, link and preload to write (see :mod:`provision.containers`);
nothing is written unless it differs. The preload tarballs are staged (fetched
and verified) with every other stage's needs before any stage changes
anything — a bad hash fails the run before anything changes; apply then
writes each file atomically, makes the enable links for the units (and a
preset file so a first-boot ``preset-all`` agrees), and writes the preload
marker last. Every write is a whole final state, so a rerun after a crash
converges. Credentials and environment files are 0600 and never shown.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO

from provision.config.model import Config, Containers, Registries, RuntimeSettings
from provision.containers.files import FileWrite, RuntimeFiles
from provision.containers.preload import (
    PreloadImage,
    already_in_place,
    load_unit_text,
    preload_images,
)
from provision.containers.units import (
    PRELOAD_DIR,
    PRELOAD_MARKER,
    PRELOAD_UNIT,
    UNIT_DIR,
    check_references,
)
from provision.errors import ProvisionError, StageError
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Need, Staging
from provision.target.tree import TargetTree, copy_chunks
from provision.target.unit_links import enable_links

log = logging.getLogger(__name__)

NAME = "containers"
PRESET_PATH = "/etc/systemd/system-preset/21-provision-containers.preset"
# Runtime -> (module, function); imported only when that runtime is configured.
RUNTIMES = {
    "docker": ("provision.containers.docker", "docker_files"),
    "containerd": ("provision.containers.containerd", "containerd_files"),
    "podman": ("provision.containers.podman", "podman_files"),
}


def runtime_files(runtime: str) -> Callable[[TargetTree, Containers, bool], RuntimeFiles]:
    module, function = RUNTIMES[runtime]
    produce: Callable[[TargetTree, Containers, bool], RuntimeFiles] = getattr(
        importlib.import_module(module), function
    )
    return produce


@dataclass
class ContainersPlan:
    config: Config = field(repr=False)  # holds credentials and container env
    directories: list[tuple[str, int]] = field(default_factory=list)
    writes: list[FileWrite] = field(default_factory=list)
    preloads: list[PreloadImage] = field(default_factory=list)  # to (re)write
    preload_unit: bool = False
    links: dict[str, str] = field(default_factory=dict)  # link path -> target
    unlinks: list[str] = field(default_factory=list)


def _has_work(section: Containers) -> bool:
    return bool(
        section.settings != RuntimeSettings() or section.registries != Registries()
        or section.containers or section.preload or section.volumes or section.networks
    )


def _write_kind(tree: TargetTree, write: FileWrite) -> str:
    state = tree.state(write.path)
    if state is None:
        return "create"
    same_meta = state.kind == "file" and (state.mode, state.uid, state.gid) == (write.mode, write.uid, write.gid)
    if same_meta and tree.read_bytes(write.path) == write.data:
        return "unchanged"
    return "replace"


def _link_kind(tree: TargetTree, path: str, target: str) -> str:
    state = tree.state(path)
    if state is None:
        return "create"
    return "unchanged" if state.kind == "link" and state.link_target == target else "replace"


def _preset(enabled: list[str], disabled: list[str]) -> bytes:
    lines = [f"enable {p.rpartition('/')[2]}" for p in enabled]
    lines += [f"disable {p.rpartition('/')[2]}" for p in disabled]
    return "".join(line + "\n" for line in lines).encode()


class ContainersStage(StageBase):
    name = NAME
    phase = "files"

    def is_empty(self, config: Config) -> bool:
        return not _has_work(config.containers)

    def needs(self, config: Config, target: Target) -> list[Need]:
        """The preload archives, except those already in the target, verified by their hash."""
        try:
            images = preload_images(config.containers)
            with TargetTree(target.root) as tree:
                missing = [image for image in images if not already_in_place(tree, image)]
        except ProvisionError as exc:
            raise StageError(NAME, "preload", str(exc)) from None
        return [Need(image.path, f"preload {image.path}", image.resource) for image in missing]

    def make_plan(self, config: Config, target: Target) -> Plan:
        section = config.containers
        try:
            with TargetTree(target.root) as tree:
                data, actions = self._plan(tree, config, section)
        except StageError:
            raise
        except ProvisionError as exc:
            raise StageError(NAME, f"runtime {section.runtime}", str(exc)) from None
        return Plan(NAME, actions, data)

    @staticmethod
    def _plan(tree: TargetTree, config: Config, section: Containers) -> tuple[ContainersPlan, list[Action]]:
        if section.runtime is None:
            raise ProvisionError("containers.runtime is required (docker, containerd or podman)")
        check_references(section)
        preloads = preload_images(section)
        files = runtime_files(section.runtime)(tree, section, bool(preloads))
        data = ContainersPlan(config, list(dict.fromkeys(files.directories)), list(files.writes))
        for path, _mode in data.directories:
            state = tree.state(path)
            if state is not None and state.kind != "directory":
                raise StageError(NAME, path, f"a {state.kind} is in the way of a directory; not replacing it")
        enabled, disabled = list(files.enable), list(files.disable)
        if preloads:
            data.preloads = [i for i in preloads if not already_in_place(tree, i)]
            data.preload_unit = True
            unit_path = f"{UNIT_DIR}/{PRELOAD_UNIT}"
            text = load_unit_text(tree, section.runtime, preloads)
            data.writes.append(FileWrite(unit_path, text.encode(), what="image preload unit"))
            enabled.append(unit_path)
        if enabled or disabled:
            data.writes.append(FileWrite(PRESET_PATH, _preset(enabled, disabled), what="unit presets"))
        written = {w.path: w.data.decode() for w in data.writes}

        def read(name: str) -> tuple[str, str] | None:
            path = f"{UNIT_DIR}/{name}"
            if path in written:
                return path, written[path]
            raw = tree.read_bytes(path)
            return (path, raw.decode(errors="replace")) if raw is not None else None

        for unit_paths, bucket in ((enabled, "enable"), (disabled, "disable")):
            for path in unit_paths:
                links, _warnings = enable_links(path.rpartition("/")[2], read)
                for link in links:
                    if bucket == "enable":
                        data.links[link.path] = link.target
                    else:
                        state = tree.state(link.path)
                        if state is not None and state.kind == "link":
                            data.unlinks.append(link.path)
        actions = [Action(_write_kind(tree, w), w.path, w.what) for w in data.writes]
        actions += [Action(_link_kind(tree, p, t), p, "enable") for p, t in data.links.items()]
        actions += [Action("delete", p, "disable") for p in data.unlinks]
        for image in preloads:
            kind = "create" if tree.state(image.path) is None else "replace"
            if image not in data.preloads:
                kind = "unchanged"
            actions.append(Action(kind, image.path, "image tarball, loaded on first boot"))
        if preloads:
            marker = "unchanged" if tree.state(PRELOAD_MARKER) and not data.preloads else "create"
            actions.append(Action(marker, PRELOAD_MARKER, "runs the preload unit once"))
        return data, actions

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[Iterator[Step]]:
        with TargetTree(target.root) as tree:
            yield self._steps(tree, plan.data, staged)

    def _steps(self, tree: TargetTree, data: ContainersPlan, staged: Staging) -> Iterator[Step]:
        for path, mode in data.directories:
            yield Step(path, partial(tree.make_directory, path, mode=mode, uid=0, gid=0))
        for write in data.writes:
            if _write_kind(tree, write) != "unchanged":
                yield Step(write.path, partial(tree.write_file, write.path, [write.data], mode=write.mode,
                                               uid=write.uid, gid=write.gid))
        for image in data.preloads:
            yield Step(image.path, partial(self._write_image, tree, image, staged))
        for path, link_target in data.links.items():
            if _link_kind(tree, path, link_target) != "unchanged":
                yield Step(path, partial(tree.symlink, path, link_target, uid=0, gid=0))
        for path in data.unlinks:
            yield Step(path, partial(tree.remove, path))
        if data.preloads or (data.preload_unit and tree.state(PRELOAD_MARKER) is None):
            yield Step(PRELOAD_MARKER, partial(tree.write_file, PRELOAD_MARKER, [b""], mode=0o600, uid=0, gid=0))

    @staticmethod
    def _write_image(tree: TargetTree, image: PreloadImage, staged: Staging) -> None:
        if (NAME, image.path) not in staged:  # in place when the needs were staged
            if already_in_place(tree, image):
                return
            raise StageError(NAME, image.path, "the archive in the target changed after the fetch; apply again")
        current = tree.open_read(image.path)
        if current is not None:
            with current, staged.open(NAME, image.path) as handle:
                if _digest(current) == _digest(handle):
                    return
        tree.make_directory(PRELOAD_DIR, mode=0o700, uid=0, gid=0)
        with staged.open(NAME, image.path) as handle:
            tree.write_file(image.path, copy_chunks(handle), mode=0o600, uid=0, gid=0)


def _digest(handle: IO[bytes]) -> bytes:
    hasher = hashlib.sha256()
    for chunk in copy_chunks(handle):
        hasher.update(chunk)
    return hasher.digest()


STAGE = ContainersStage()
