"""Fetching: the one HTTP client, resources (data/http/tftp/s3/gs), config references, the cache.

- :mod:`provision.fetch.http` — ``HttpClient``: retries with backoff, deadlines,
  Retry-After, proxies, extra CAs (with :mod:`~provision.fetch.urls` for redaction and
  proxy choice, :mod:`~provision.fetch.failures` for describing and classifying errors).
- :mod:`provision.fetch.tftp` — a small TFTP client for ``tftp://`` resources.
- :mod:`provision.fetch.settings` — a client configured from a config's timeouts/proxy/CAs.
- :mod:`provision.fetch.resource` — a config ``Resource`` streamed, decompressed
  and hash-verified on the fly.
- :mod:`provision.fetch.cloudauth` — the instance's credentials for s3/gs/Azure blob
  sources (with :mod:`~provision.fetch.sigv4`, AWS Signature Version 4).
- :mod:`provision.fetch.configrefs` — ``provision.config.merge/replace`` resolved.
- :mod:`provision.fetch.cache` — the final config written once (0600) and read back.

Modules are imported on demand; nothing here pulls in ``requests`` at import time.
"""
