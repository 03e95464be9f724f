"""The network stage: the config's network section, rendered for the target's network manager.

Which manager: ``network.renderer``, or with ``auto`` the first the target
has installed (see :mod:`provision.network`). Every file is a computed
final state written atomically (always replaced, like units), so a rerun
after a crash converges. Runs after files (a file from the config cannot
undo it) and before units.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

from provision.config.model import Config
from provision.errors import ProvisionError, StageError
from provision.network import Rendered
from provision.stages import crashpoint
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Staging
from provision.target.tree import TargetTree

NAME = "network"


def _action(tree: TargetTree, path: str, text: str, mode: int) -> str:
    state = tree.state(path)
    if state is None:
        return "create"
    if state.kind == "file" and state.mode == mode and (state.uid, state.gid) == (0, 0) \
            and tree.read_bytes(path) == text.encode():
        return "unchanged"
    return "replace"


def _ifupdown_main(tree: TargetTree) -> list[Rendered]:
    """/etc/network/interfaces must source interfaces.d, or the rendered file is never read."""
    from provision.network import ifupdown

    current = tree.read_bytes(ifupdown.MAIN)
    if current is None:
        return [Rendered(ifupdown.MAIN, f"auto lo\niface lo inet loopback\n\n{ifupdown.SOURCE_LINE}\n")]
    text = current.decode("utf-8", "replace")
    if any(line.split()[:1] in (["source"], ["source-directory"]) and "interfaces.d" in line
           for line in text.splitlines()):
        return []
    return [Rendered(ifupdown.MAIN, text.rstrip("\n") + f"\n\n{ifupdown.SOURCE_LINE}\n")]


class NetworkStage(StageBase):
    name = NAME
    phase = "files"

    def is_empty(self, config: Config) -> bool:
        network = config.network
        return not (network.interfaces or network.nameservers.addresses or network.nameservers.search)

    def make_plan(self, config: Config, target: Target) -> Plan:
        from provision.network import choose, render

        with TargetTree(target.root) as tree:
            try:
                renderer = choose(config.network, lambda path: tree.state(path) is not None)
                if renderer is None:
                    raise StageError(NAME, "renderer", "no network manager found in the target "
                                     "(netplan, NetworkManager, ifupdown, systemd-networkd); set network.renderer")
                files = render(renderer, config.network)
                if renderer == "ifupdown":
                    files += _ifupdown_main(tree)
                actions = [Action(_action(tree, f.path, f.text, f.mode), f.path, renderer) for f in files]
            except ProvisionError as exc:
                if isinstance(exc, StageError):
                    raise
                raise StageError(NAME, "-", str(exc)) from exc
        return Plan(NAME, actions, files)

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[list[Step]]:
        # Nothing to fetch (no needs): every file is rendered from the config itself.
        with TargetTree(target.root) as tree, tree.deferred():
            tree.on_commit = crashpoint.item_done
            yield [Step(r.path, partial(tree.write_file, r.path, [r.text.encode()], mode=r.mode, uid=0, gid=0))
                   for r in plan.data]


STAGE = NetworkStage()
