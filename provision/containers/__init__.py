"""Container runtime configuration and the units that run containers at boot.

One module per runtime (:mod:`.docker`, :mod:`.containerd`, :mod:`.podman`),
each turning the config's ``containers`` section plus the files the image
already ships into the files to write (:class:`.files.FileWrite`). Shared
pieces: a TOML emitter (:mod:`.toml`), JSON/TOML merging (:mod:`.merge`),
systemd command-line quoting and unit text (:mod:`.units`), registry
credentials (:mod:`.auth`) and image preloading (:mod:`.preload`).
"""
