"""Platforms: find out where we run and fetch this machine's config from there.

- :mod:`.settings`  — Settings from flags, environment and the kernel command line
- :mod:`.cmdline`   — the provision.* kernel command-line parameters
- :mod:`.detect`    — platform detection from local evidence only (no network)
- :mod:`.acquire`   — ``acquire_config(settings, offline=...) -> FetchOutcome``, the entry point
- :mod:`.registry`  — platform name -> fetch function
- :mod:`.http_cloud` — the engine for the declarative datasources/*.json clouds
- :mod:`.system`    — the image's own user config and base configs (Ignition's conventions)
- :mod:`.drives`    — platforms whose config is on a labelled drive, as a table
- one module per platform that needs code: openstack, azure, azurestack, vmware,
  qemu, nocloud, metal, localfile, cloudstack, hyperv, virtualbox, zvm, applehv,
  lxd, maas, opennebula, cloudsigma, smartos, bigstep
- helpers: payload (base64/gzip), media (read files from a filesystem),
  configdrive (labelled filesystems), race, transport, ovf, systree, urls,
  serial (line I/O on a serial port)
"""
