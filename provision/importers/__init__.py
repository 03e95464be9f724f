"""Importers: foreign config formats translated into provision's spec.

Each module exposes ``to_spec(document) -> provision.config.kinds.Imported``;
they are listed, with the markers that recognise their formats, in
provision.config.kinds.
"""
