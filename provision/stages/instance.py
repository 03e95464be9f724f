"""The instance stage: what cloud-init does without being asked, from the platform's metadata.

- The image's default user (its settings, :mod:`provision.instance.image`),
  with the platform's SSH public keys (AWS key pair, GCE instance/project
  keys, OpenStack, Azure, DigitalOcean, Hetzner, NoCloud ``public-keys``) and
  its sudo rules, unless the config says not to create it.
- ``/etc/hostname`` from the metadata's local-hostname, unless the config
  writes /etc/hostname itself (a file, or cloud-config ``hostname``/``fqdn``).

Everything is expressed as a small generated config (one user, two files)
and applied by the users and files stages, so accounts, keys, sudoers and
the hostname file get exactly their semantics: nothing here writes into the
target by itself. Without metadata and without a default user there is
nothing to do.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from provision.config.model import Config
from provision.errors import ProvisionError
from provision.instance.data import InstanceData
from provision.instance.image import DefaultUser, ImageSettings, read_image_settings
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Staging

NAME = "instance"
HOSTNAME = "/etc/hostname"
SUDOERS = "/etc/sudoers.d/90-provision-default-user"
log = logging.getLogger(__name__)

_HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass
class InstancePlan:
    generated: Config | None  # applied by the users and files stages
    plans: list[Plan]


def config_sets_hostname(config: Config) -> bool:
    return any(f.path.rstrip("/") == HOSTNAME for f in config.storage.files) or any(
        link.path.rstrip("/") == HOSTNAME for link in config.storage.links)


def short_hostname(name: str | None) -> str | None:
    """The host name for /etc/hostname, as cloud-init writes it: the first label of
    an FQDN unless told otherwise; None when the metadata's value is not a host name."""
    if not name:
        return None
    label = name.strip().rstrip(".").split(".", 1)[0]
    return label if _HOSTNAME_LABEL.match(label) else None


def wants_default_user(config: Config) -> bool:
    """Whether the config wants the image's default user (absent: yes, as cloud-init)."""
    choice = config.passwd.default_user
    return choice is None or choice.create is not False


def asks_for_default_user(config: Config) -> bool:
    """The config itself names the default user (create: true, or keys for it)."""
    choice = config.passwd.default_user
    return choice is not None and (choice.create is True or bool(choice.ssh_authorized_keys))


def _config_keys(config: Config, name: str) -> list[str]:
    keys: list[str] = []
    for user in config.passwd.users:
        if user.name == name:
            keys += user.ssh_authorized_keys
    choice = config.passwd.default_user
    return keys + list(choice.ssh_authorized_keys if choice else ())


def _user_spec(user: DefaultUser, keys: list[str], existing_groups: set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": user.name}
    if user.gecos:
        entry["gecos"] = user.gecos
    if user.shell:
        entry["shell"] = user.shell
    if user.homedir:
        entry["homeDir"] = user.homedir
    if user.groups:
        entry["groups"] = list(user.groups)
    if keys:
        entry["sshAuthorizedKeys"] = list(dict.fromkeys(keys))
    return entry


def _data_file(path: str, text: str, mode: int) -> dict[str, Any]:
    from provision.config.dataurl import encode_resource

    return {"path": path, "mode": mode, "overwrite": True,
            "contents": encode_resource(text.encode(), allow_gzip=False)}


def generated_spec(config: Config, image: ImageSettings, instance: InstanceData | None,
                   existing_groups: set[str]) -> dict[str, Any]:
    """The config this stage applies, as a spec dict (empty sections when nothing to do)."""
    users: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    user = image.default_user
    if user is not None and wants_default_user(config):
        platform_keys = instance.keys_for(user.name) if instance and image.platform_ssh_keys else []
        users.append(_user_spec(user, _config_keys(config, user.name) + platform_keys, existing_groups))
        # Supplementary groups the image lacks are created, as cloud-init does.
        groups += [{"name": g} for g in user.groups if g not in existing_groups]
        if user.sudo:
            rules = "".join(f"{user.name} {rule}\n" for rule in user.sudo)
            files.append(_data_file(SUDOERS, rules, 0o440))
    hostname = short_hostname(instance.local_hostname) if instance else None
    if hostname and image.hostname_from_metadata and not config_sets_hostname(config):
        files.append(_data_file(HOSTNAME, hostname + "\n", 0o644))
    from provision.config.versions import NEWEST

    spec: dict[str, Any] = {"provision": {"version": NEWEST}}
    if users or groups:
        spec["passwd"] = {"users": users, "groups": groups}
    if files:
        spec["storage"] = {"files": files}
    return spec


def _existing_groups(target: Target) -> set[str]:
    try:
        text = (target.root / "etc/group").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


class InstanceStage(StageBase):
    name = NAME
    phase = "files"

    def is_empty(self, config: Config) -> bool:
        # Depends on the image and the metadata, not on a config section;
        # planning reads two small files and touches nothing else.
        return False

    def make_plan(self, config: Config, target: Target) -> Plan:
        from provision.config.build import build_config
        from provision.stages.files import STAGE as FILES
        from provision.stages.users import STAGE as USERS

        image = read_image_settings(target.root)
        if image.default_user is None and asks_for_default_user(config):
            # Never silently drop what the config asked for (keys that would log in).
            raise ProvisionError(
                "the config asks for the image's default user (passwd.defaultUser; cloud-config "
                "'default' or top-level ssh_authorized_keys), but the image names none: set "
                "default_user in /etc/provision/image.json, or name the user in the config")
        spec = generated_spec(config, image, target.instance, _existing_groups(target))
        if set(spec) == {"provision"}:
            return Plan(NAME, [], InstancePlan(None, []))
        generated = build_config(spec)
        plans = [stage.plan(generated, target) for stage in (USERS, FILES)
                 if not stage.is_empty(generated)]
        actions = [Action(a.kind, a.item, a.detail or f"from the {_why(a.item)}")
                   for plan in plans for a in plan.actions]
        return Plan(NAME, actions, InstancePlan(generated, plans))

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[Iterable[Step]]:
        from provision.stages.files import STAGE as FILES
        from provision.stages.users import STAGE as USERS

        data: InstancePlan = plan.data
        if data.generated is None:
            yield []
            return
        by_name = {USERS.name: USERS, FILES.name: FILES}
        with Staging(data.generated, target.root) as own, contextlib.ExitStack() as stack:
            own.fetch_all(FILES.name, FILES.needs(data.generated, target))
            # Chained lazily: the users stage computes each step against the
            # databases as the previous steps left them.
            yield itertools.chain.from_iterable(
                stack.enter_context(by_name[inner.stage].steps(inner, target, own))
                for inner in data.plans)


def _why(item: str) -> str:
    return "platform's metadata" if HOSTNAME in item else "image's default user"


STAGE = InstanceStage()
