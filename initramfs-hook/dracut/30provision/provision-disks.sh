#!/bin/sh
# provision-disks.service: the disks stage, which first writes the config's
# kernel arguments into the boot loader's files. When they changed (exit
# status 76) the machine reboots into the new command line before any disk
# is touched; this unit stays active until the reboot stops it, so the later
# stages (ordered after it) never start on this boot.
/usr/bin/python3 -I -S /usr/lib/provision/provision.pyz run --root /sysroot --stage disks
status=$?
if [ "$status" = 76 ]; then
	echo "provision: rebooting into the new kernel command line"
	systemctl --no-block reboot
	while :; do sleep 60; done
fi
exit "$status"
