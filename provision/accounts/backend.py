"""Choosing how accounts are changed: shadow-utils when present, else the direct writer.

``PROVISION_ACCOUNTS_BACKEND=direct|shadow-utils`` forces one; making a tool
unavailable (``PROVISION_TOOL_USERADD=/nonexistent``) also selects the direct
writer, as on an image without shadow-utils.
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


class AccountsBackend(Protocol):
    name: str

    def add_group(self, op: NewGroup) -> None: ...
    def edit_group(self, op: GroupEdit) -> None: ...
    def delete_group(self, name: str) -> None: ...
    def add_user(self, op: NewUser) -> None: ...
    def edit_user(self, op: UserEdit) -> None: ...
    def delete_user(self, name: str) -> None: ...


def select_backend(tree: TargetTree, choice: str | None = None) -> AccountsBackend:
    choice = choice or os.environ.get(BACKEND_ENV) or None
    if choice is None:
        choice = "shadow-utils" if shadow_utils.available() else "direct"
    if choice == "direct":
        return DirectBackend(tree)
    if choice == "shadow-utils":
        if not shadow_utils.available():
            missing = [t for t in shadow_utils.TOOLS if not have_tool(t)]
            raise ProvisionError(f"shadow-utils backend asked for, but missing: {', '.join(missing)}")
        return shadow_utils.ShadowUtilsBackend(tree)
    raise ProvisionError(f"{BACKEND_ENV}={choice!r}: expected 'direct' or 'shadow-utils'")
