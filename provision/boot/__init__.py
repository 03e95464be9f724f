"""Provisioning from the initramfs: the boot phases ``provision run`` executes.

The initramfs hooks call ``provision run --root ROOT --phase P`` once per
phase, in Ignition's order, each in its own process (a phase runs the
engine stages, :mod:`provision.stages`, that declare it):

``fetch-offline``  the config from sources that need no network; if the
                   network is needed (metadata service, remote references or
                   file contents), leave the ``neednet`` flag and stop
``fetch``          the rest, over the network; the final config is cached once
``disks``          kernel arguments first (a reboot if they changed), then
                   partitions, RAID, LUKS, filesystems (the root is not mounted);
                   first fetches and verifies what every later phase writes
``mount``          the configured filesystems under the mounted root
``files``          users, files, systemd units, the container runtime
``umount``         undo ``mount`` before switching root

- :mod:`.rundir`   what the phases leave for each other under /run/provision
- :mod:`.rootpeek` has this root been provisioned already? (before it is mounted)
- :mod:`.bootfs`   the root's boot filesystems mounted for the kargs stage
- :mod:`.remote`   which sources in a config need the network
- :mod:`.imageconfig` the image's base configs and the platform's credentials around the fetch
- :mod:`.summary`  the short failure summary for the console
- :mod:`.phases`   the phases themselves
"""
