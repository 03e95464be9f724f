#!/bin/sh
# provision-disks.service: the disks stage, which first writes the config's
# kernel arguments into the boot loader's files. When they changed (exit
# status 76) the machine reboots into the new command line before any disk
# is touched. Forced: an orderly shutdown would stop this unit and let the
# later stages' start jobs run (DefaultDependencies=no units do not conflict
# with shutdown.target); nothing here needs stopping (the boot loader's files
# are written, synced and unmounted).
/usr/bin/python3 -I -S /usr/lib/provision/provision.pyz run --root /sysroot --phase disks
status=$?
if [ "$status" = 76 ]; then
	echo "provision: rebooting into the new kernel command line"
	sync
	systemctl reboot --force
	while :; do sleep 60; done  # until the reboot happens
fi
exit "$status"
