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
for tool in /usr/lib/systemd/systemd-networkd-wait-online /lib/systemd/systemd-networkd-wait-online; do
    if [ -x "$tool" ]; then
        exec "$tool" --any --ipv4 --timeout=120
    fi
done
