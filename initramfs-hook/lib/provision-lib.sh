# Shell functions shared by the provision boot scripts (initramfs-tools).
# Sourced, not run: the scripts set $rootmnt and have /scripts/functions.
# shellcheck shell=sh

PROVISION_RUN_DIR=/run/provision
PROVISION_PYZ=/usr/lib/provision/provision.pyz

# Provisioning runs only on the first boot: the boot loader adds
# provision.firstboot (or Ignition's ignition.firstboot, for images built for
# Ignition) to the kernel command line while its stamp file exists. Where both
# are given, provision.firstboot decides.
provision_firstboot() {
	ours=maybe
	theirs=
	# shellcheck disable=SC2013 # the command line is words
	for word in $(cat "${PROVISION_PROC_CMDLINE:-/proc/cmdline}"); do
		case "$word" in
		provision.firstboot | provision.firstboot=1 | provision.firstboot=yes | provision.firstboot=true) ours=1 ;;
		provision.firstboot=*) ours= ;;
		ignition.firstboot=0 | ignition.firstboot=no | ignition.firstboot=off | ignition.firstboot=) theirs= ;;
		ignition.firstboot | ignition.firstboot=*) theirs=1 ;;
		esac
	done
	[ "$ours" = maybe ] && ours=$theirs
	[ -n "${ours:-}" ]
}

# Not _uptime: initramfs-tools' own _uptime (whole seconds) feeds its time_elapsed arithmetic.
provision_uptime() { cut -d' ' -f1 /proc/uptime; }

# Stop the boot for good: the summary on the console (the engine printed it
# already when it could), then the emergency shell - again and again: a
# half-provisioned machine must not boot.
provision_fail() {
	stage=$1
	if [ ! -s "$PROVISION_RUN_DIR/failure" ]; then
		echo "provision: FAILED in stage $stage (no summary; the log is $PROVISION_RUN_DIR/provision.log)"
	fi
	while true; do
		panic "provision: first-boot provisioning failed ($stage); summary: cat $PROVISION_RUN_DIR/failure"
		echo "provision: the boot cannot continue; reboot to try again"
		sleep 5
	done
}

# New kernel arguments were written into the boot loader's files: reboot
# into them (QEMU with -no-reboot, and tests, see the machine stop here).
provision_reboot() {
	echo "provision: rebooting into the new kernel command line: $(cat "$PROVISION_RUN_DIR/reboot" 2>/dev/null)"
	sync
	reboot -f
	echo b >/proc/sysrq-trigger
	sleep 60
	provision_fail reboot
}

# Run stages of `provision run` in one process; stop the boot if one fails.
# Exit status 75 (the network is needed first) is returned to the caller;
# 76 (new kernel arguments) reboots.
provision_stages() {
	start=$(provision_uptime)
	args=
	for stage in "$@"; do args="$args --phase $stage"; done
	# shellcheck disable=SC2086 # $args is a list of options
	/usr/bin/python3 -I -S "$PROVISION_PYZ" run --root "${rootmnt:-/root}" $args
	status=$?
	echo "provision: timing: stages=$(echo "$@" | tr ' ' ,) process-seconds=$(awk -v a="$start" -v b="$(provision_uptime)" 'BEGIN { printf "%.2f", b - a }') status=$status"
	case "$status" in
	0 | 75) return "$status" ;;
	76) provision_reboot ;;
	*) provision_fail "$*" ;;
	esac
}
