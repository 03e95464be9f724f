"""User and group accounts inside a target root.

Two interchangeable ways to change the account databases: the shadow-utils
tools run with ``--root`` (:mod:`provision.accounts.shadow_utils`), and a
direct writer of passwd/shadow/group/gshadow for images without them
(:mod:`provision.accounts.direct`). Both consume the same edits
(:mod:`provision.accounts.edits`), so they produce the same files.
"""
