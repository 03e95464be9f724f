"""The ``metadata`` section of a datasources/*.json entry: what to read, and how.

::

    "metadata": {
      "documents": {"meta": {"path": "/metadata/v1.json", "format": "json"}},
      "instance_id":    {"document": "meta", "key": "droplet_id"},
      "local_hostname": {"path": "/latest/meta-data/local-hostname"},
      "region":         {"field": "zone", "parse": "zone-region"},
      "public_keys": [
        {"path": "/latest/meta-data/public-keys/", "parse": "aws-index"},
        {"path": ".../project/attributes/ssh-keys", "parse": "gce",
         "unless_true": {"path": ".../instance/attributes/block-project-ssh-keys"}}
      ],
      "report_urls": {"phone_home": {"document": "meta", "key": "phone_home_url"}}
    }

A value comes from a ``path`` below the base URL (404: absent), from a
``key`` (dotted, list indexes allowed) of a fetched ``document``, or from
another ``field``; ``parse`` names a parser of :mod:`provision.instance.parsers`
(default ``text``; key sources default to ``lines``). ``aws-index`` is EC2's
listing of ``N=name`` lines whose keys live at ``N/openssh-key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.instance.parsers import DOCUMENT_FORMATS, KEY_PARSERS, STRING_PARSERS

STRING_FIELDS = ("instance_id", "local_hostname", "region", "zone", "ipv4_private", "ipv4_public")
KEY_PARSES = (*KEY_PARSERS, "aws-index")
_SOURCE_KEYS = {"path", "document", "key", "field", "parse", "unless_true"}


def check_section(name: str, section: Mapping[str, Any]) -> None:
    """Raise ValueError for a malformed section (a packaging bug, caught by the tests)."""
    where = f"datasource {name!r} metadata"
    unknown = set(section) - {*STRING_FIELDS, "documents", "public_keys", "report_urls"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    documents = section.get("documents", {})
    for doc_name, doc in documents.items():
        if set(doc) - {"path", "format"} or "path" not in doc or doc.get("format", "json") not in DOCUMENT_FORMATS:
            raise ValueError(f"{where}: document {doc_name!r} needs a path and a format of "
                             f"{sorted(DOCUMENT_FORMATS)}")
    for field in STRING_FIELDS:
        if field in section:
            _check_source(where, field, section[field], documents, STRING_PARSERS)
    for i, source in enumerate(section.get("public_keys", ())):
        _check_source(where, f"public_keys[{i}]", source, documents, KEY_PARSES, default="lines")
        if "unless_true" in source:
            _check_source(where, f"public_keys[{i}].unless_true", source["unless_true"],
                          documents, STRING_PARSERS)
    for kind, source in section.get("report_urls", {}).items():
        _check_source(where, f"report_urls.{kind}", source, documents, STRING_PARSERS)


def _check_source(
    where: str, field: str, source: Any, documents: Mapping[str, Any],
    parsers: Any, default: str = "text",
) -> None:
    if not isinstance(source, Mapping) or set(source) - _SOURCE_KEYS:
        raise ValueError(f"{where}.{field}: a mapping of {sorted(_SOURCE_KEYS)}")
    origins = [k for k in ("path", "document", "field") if k in source]
    if len(origins) != 1:
        raise ValueError(f"{where}.{field}: exactly one of path, document, field")
    if "document" in source and (source["document"] not in documents or "key" not in source):
        raise ValueError(f"{where}.{field}: document {source['document']!r} is not listed, "
                         "or no key is given")
    if "field" in source and source["field"] not in STRING_FIELDS:
        raise ValueError(f"{where}.{field}: unknown field {source['field']!r}")
    if source.get("parse", default) not in parsers:
        raise ValueError(f"{where}.{field}: unknown parse {source.get('parse')!r}")
