"""The target root: where a run writes, reached only through safe path resolution.

:mod:`provision.target.tree` resolves every path component inside the root
(symlinks included, absolute ones relative to the root) and writes atomically;
:mod:`provision.target.accounts` reads the root's passwd and group files.
"""
