#!/bin/sh
# Bring the network up in the initrd for provision's online fetch: only run
# when the offline pass left /run/provision/neednet. DHCP on every Ethernet
# link through systemd-networkd (dracut's systemd-networkd module).
set -eu
# A static network (ip= or the seed's network-config) is brought up by the
# fetch phase itself (provision.boot.initnet): no DHCP then.
if [ -e /run/provision/initnet.json ]; then
    exit 0
fi
if [ ! -e /etc/systemd/network/zz-provision-dhcp.network ]; then
    mkdir -p /etc/systemd/network
    cp /usr/lib/provision/provision-dhcp.network /etc/systemd/network/zz-provision-dhcp.network
fi
# (Re)start: dracut's systemd-networkd module may have started it already,
# without our .network file.
systemctl restart systemd-networkd.service
# How long to wait for a lease: provision.fetch.wait= (seconds, or infinity:
# 0 is wait-online's "no limit"), default 120 like the fetch itself. A
# timeout is not a failure here: the fetch keeps retrying within the same
# limit and reports what it could not reach.
wait=120
# shellcheck disable=SC2013 # the command line is words
for word in $(cat "${PROVISION_PROC_CMDLINE:-/proc/cmdline}"); do
    case "$word" in
    provision.fetch.wait=infinity | provision.fetch.wait=inf | provision.fetch.wait=none) wait=0 ;;
    provision.fetch.wait=* | provision.fetch.timeout=*)
        wait=${word#*=}
        wait=${wait%%.*}
        if [ "$wait" = 0 ]; then wait=1; fi ;;
    esac
done
case "$wait" in '' | *[!0-9]*) wait=120 ;; esac
for tool in /usr/lib/systemd/systemd-networkd-wait-online /lib/systemd/systemd-networkd-wait-online; do
    if [ -x "$tool" ]; then
        "$tool" --any --ipv4 "--timeout=$wait" ||
            echo "provision: no network after ${wait} s; the fetch keeps trying within provision.fetch.wait"
        exit 0
    fi
done
