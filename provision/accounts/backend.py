"""Choosing how accounts are changed: the direct writer, unless shadow-utils is asked for.

The direct writer (:mod:`provision.accounts.direct`) runs nothing from the
target. ``useradd --root`` and friends chroot into the target and then run
its code as host root: its NSS modules (``libnss_*.so`` named by its
nsswitch.conf), its ``/etc/shadow-maint/user{add,del}-{pre,post}.d`` hooks
and ``USERDEL_CMD``; root in a chroot is not confined. So shadow-utils is
never chosen by default, only with ``PROVISION_ACCOUNTS_BACKEND=shadow-utils``
(or ``UsersStage("shadow-utils")``) by someone who trusts the image as much
as the host, e.g. to compare the two backends in tests.
"""

from __future__ import annotations

import os
from typing import Protocol

from provision.accounts import shadow_utils
from provision.accounts.direct import DirectBackend
from provision.accounts.edits import GroupEdit, NewGroup, NewUser, UserEdit
from provision.errors import ProvisionError
from provision.run import have_tool
from provision.target.tree import TargetTree

BACKEND_ENV = "PROVISION_ACCOUNTS_BACKEND"
DEFAULT_BACKEND = "direct"


class AccountsBackend(Protocol):
    name: str

    def add_group(self, op: NewGroup) -> None: ...
    def edit_group(self, op: GroupEdit) -> None: ...
    def delete_group(self, name: str) -> None: ...
    def add_user(self, op: NewUser) -> None: ...
    def edit_user(self, op: UserEdit) -> None: ...
    def delete_user(self, name: str) -> None: ...


def select_backend(tree: TargetTree, choice: str | None = None) -> AccountsBackend:
    choice = choice or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if choice == "direct":
        return DirectBackend(tree)
    if choice == "shadow-utils":
        if not shadow_utils.available():
            missing = [t for t in shadow_utils.TOOLS if not have_tool(t)]
            raise ProvisionError(f"shadow-utils backend asked for, but missing: {', '.join(missing)}")
        return shadow_utils.ShadowUtilsBackend(tree)
    raise ProvisionError(f"{BACKEND_ENV}={choice!r}: expected 'direct' or 'shadow-utils'")
