"""What cloud-init does without being asked, done from the instance's metadata.

- :mod:`.data`       the instance's attributes (id, hostname, region, zone,
                     IPs, SSH keys, report URLs), normalised across platforms
                     and kept in the run directory as ``instance.json``
- :mod:`.collect`    fetching them: declarative ``metadata`` sections of the
                     datasources/*.json entries, NoCloud's ``meta-data``
- :mod:`.parsers`    the few value formats those sections name
- :mod:`.image`      the image's settings (default user, grow root, ...)
- :mod:`.attributes` the env file for the booted system (/run/metadata/provision)
- :mod:`.grow`       growing partitions, physical volumes and filesystems
- :mod:`.report`     telling the platform that provisioning succeeded or failed

The stages that use them are :mod:`provision.stages.instance` (default user,
platform keys, hostname) and :mod:`provision.stages.grow`.
"""
