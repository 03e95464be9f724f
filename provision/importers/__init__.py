"""Importers: foreign config formats translated into provision's spec.

Each module exposes ``detect(document) -> bool`` and
``to_spec(document) -> provision.config.kinds.Imported``; they are listed in
provision.config.kinds.IMPORTERS.
"""
