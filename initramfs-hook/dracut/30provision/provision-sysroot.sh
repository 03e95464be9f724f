#!/bin/sh
# The files stage writes into /sysroot, which the initrd mounts read-only
# unless the kernel command line says rw: `rw` remounts it writable for the
# mount/files stages, `restore` puts it back as the command line wants.
set -eu
case "${1:-}" in
rw) mount -o remount,rw /sysroot ;;
restore)
    # shellcheck disable=SC2013 # the command line is words
    for word in $(cat /proc/cmdline); do
        [ "$word" = rw ] && exit 0
    done
    mount -o remount,ro /sysroot
    ;;
*) echo "usage: $0 rw|restore" >&2; exit 2 ;;
esac
