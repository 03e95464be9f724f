"""Platforms: find out where we run and fetch this machine's config from there.

- :mod:`.settings`  — Settings from flags, environment and the kernel command line
- :mod:`.cmdline`   — the provision.* kernel command-line parameters
- :mod:`.detect`    — platform detection from local evidence only (no network)
- :mod:`.acquire`   — ``acquire_config(settings, offline=...) -> FetchOutcome``, the entry point
- :mod:`.registry`  — platform name -> fetch function
- :mod:`.http_cloud` — the engine for the declarative datasources/*.json clouds
- one module per platform that needs code: openstack, azure, vmware, qemu,
  nocloud, metal, localfile
- helpers: payload (base64/gzip), media (read a file from a filesystem),
  configdrive (labelled filesystems), race, transport, ovf, systree, urls
"""
