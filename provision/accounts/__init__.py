"""User and group accounts inside a target root.

Two interchangeable ways to change the account databases: a direct writer
of passwd/shadow/group/gshadow (:mod:`provision.accounts.direct`, the
default: it runs nothing shipped in the target), and the shadow-utils tools
run with ``--root`` (:mod:`provision.accounts.shadow_utils`, only when asked
for: they run the target's hooks and NSS modules as host root; see
:mod:`provision.accounts.backend`). Both consume the same edits
(:mod:`provision.accounts.edits`), so they produce the same files.
"""
