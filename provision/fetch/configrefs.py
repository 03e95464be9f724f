"""Resolve ``provision.config.replace`` / ``merge[]`` references into one final config.

The semantics are Ignition's: a ``replace`` reference discards the config
that names it and continues with the referenced one; ``merge`` references
are fetched in order, each resolved recursively (depth first), and merged
over the config so far with :func:`provision.config.merge.merge_specs`.
Every reference is fetched with the one HTTP client, verified against its
hash and parsed with the normal pipeline (any accepted format). Once a
config has been read, its timeouts, proxy and CA settings apply to the
fetches that follow.

Nothing is returned until every referenced config has been fetched,
verified and parsed, and the merged result validated; any failure raises
(FetchError, ConfigError) and there is no partial result. A reference that
names one of its own ancestors is a cycle; depth and total count are limited.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provision.config import model
from provision.errors import ConfigError, FetchError
from provision.fetch.http import HttpClient
from provision.fetch.resource import (
    DEFAULT_ENDPOINTS,
    ObjectStoreEndpoints,
    describe_source,
    fetch_bytes,
)
from provision.fetch.settings import client_for_meta

if TYPE_CHECKING:
    from provision.config.pipeline import ParsedConfig

log = logging.getLogger(__name__)

DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_CONFIGS = 64
CONFIG_SIZE_LIMIT = 32 << 20


@dataclass(frozen=True)
class ResolvedConfig:
    """The final config: its newest-spec dict (references removed), the model, and the client
    configured with its settings (use it for file contents), plus what was fetched, in order."""

    spec: dict[str, Any]
    config: model.Config
    client: HttpClient
    fetched: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _State:
    endpoints: ObjectStoreEndpoints
    max_depth: int
    max_configs: int
    fetched: list[str] = field(default_factory=list)


def resolve_references(
    parsed: ParsedConfig, client: HttpClient, *, endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS,
    max_depth: int = DEFAULT_MAX_DEPTH, max_configs: int = DEFAULT_MAX_CONFIGS,
) -> ResolvedConfig:
    """Fetch, verify, parse and merge everything ``parsed`` references; see the module doc."""
    spec = _valid_spec(parsed)
    state = _State(endpoints, max_depth, max_configs)
    root = f"<{parsed.name}>"
    final, used = _render(spec, client, (root,), state)
    if not state.fetched:
        assert parsed.config is not None
        return ResolvedConfig(_without_references(spec), parsed.config, used, ())
    from provision.config.pipeline import parse_config

    merged = parse_config(json.dumps(final).encode(), "merged config")
    spec = _valid_spec(merged)
    assert merged.config is not None
    final_client = client_for_meta(client, merged.config.provision, endpoints=endpoints)
    return ResolvedConfig(spec, merged.config, final_client, tuple(state.fetched))


def _render(
    spec: dict[str, Any], base: HttpClient, chain: tuple[str, ...], state: _State,
    settings: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], HttpClient]:
    """This config with its references resolved, and the client its settings imply.

    ``base`` is the client before this config's settings; ``settings`` (a
    ``provision`` section) replaces this config's own for its fetches.
    """
    from provision.config.build import build
    from provision.config.merge import merge_specs

    meta = build(model.Meta, spec.get("provision", {"version": ""}))
    own = meta if settings is None else build(model.Meta, settings)
    client = client_for_meta(base, own, endpoints=state.endpoints)
    if meta.config.replace is not None and meta.config.replace.source is not None:
        child = _fetch_config(meta.config.replace, client, chain, state)
        return _render(child, client, (*chain, meta.config.replace.source), state)
    result = _without_references(spec)
    for reference in meta.config.merge:
        child = _fetch_config(reference, client, chain, state)
        assert reference.source is not None
        # As Ignition: what a merged config references is fetched with the settings of the
        # config so far merged with its own, so a child that sets no timeouts keeps the parent's.
        inherited = merge_specs({"provision": result.get("provision", {})},
                                {"provision": _without_references(child).get("provision", {})})
        child, client = _render(child, base, (*chain, reference.source), state, inherited["provision"])
        result = merge_specs(result, child)
    return result, client


def _fetch_config(
    reference: model.Resource, client: HttpClient, chain: tuple[str, ...], state: _State
) -> dict[str, Any]:
    from provision.config.pipeline import parse_config

    source = reference.source
    if source is None:
        raise FetchError(f"{_show(chain[-1])}: a config reference has no source")
    if source in chain:
        path = " -> ".join(_show(s) for s in (*chain[chain.index(source):], source))
        raise FetchError(f"config reference cycle: {path}")
    if len(chain) > state.max_depth:
        raise FetchError(
            f"config references nest deeper than {state.max_depth} levels at {describe_source(source)}"
        )
    if len(state.fetched) >= state.max_configs:
        raise FetchError(f"more than {state.max_configs} referenced configs")
    name = describe_source(source)
    log.info("fetching referenced config %s", name)
    data = fetch_bytes(reference, client, limit=CONFIG_SIZE_LIMIT, endpoints=state.endpoints)
    state.fetched.append(name)
    parsed = parse_config(data, name)
    return _valid_spec(parsed)


def _valid_spec(parsed: ParsedConfig) -> dict[str, Any]:
    if not parsed.ok or parsed.spec is None:
        errors = [d for d in parsed.diagnostics if d.is_error]
        raise ConfigError(errors or parsed.diagnostics)
    return parsed.spec


def _without_references(spec: dict[str, Any]) -> dict[str, Any]:
    meta = spec.get("provision")
    if not isinstance(meta, dict) or "config" not in meta:
        return spec
    return {**spec, "provision": {k: v for k, v in meta.items() if k != "config"}}


def _show(source: str) -> str:
    return source if source.startswith("<") else describe_source(source)
