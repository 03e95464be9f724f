#!/bin/sh
# Install provision's initramfs integration into an image (or DESTDIR):
#
#   initramfs-hook/install.sh [--bundle DIR] [--python PY] [--no-dracut] [--no-initramfs-tools]
#
# - builds the engine bundle (provision.pyz + native/ + stdlib-modules.txt)
#   with tools/build_zipapp.py using PY (default: python3 on PATH, which must
#   have provision's dependencies installed), unless --bundle gives one;
# - installs it to /usr/lib/provision/initramfs;
# - installs the initramfs-tools hooks and boot scripts under
#   /usr/share/initramfs-tools and the dracut module under
#   /usr/lib/dracut/modules.d/30provision;
# - installs provision-firstboot-complete.service, which removes the boot
#   loader's first-boot stamp once the machine has booted provisioned.
#
# Then rebuild the initramfs (update-initramfs -u, or dracut -f). DESTDIR
# installs into a staging tree instead of /.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
checkout=$(dirname "$here")
DESTDIR=${DESTDIR:-}
bundle=
python=${PYTHON:-python3}
target_python=${TARGET_PYTHON:-/usr/bin/python3}
dracut=yes
itools=yes

while [ $# -gt 0 ]; do
	case "$1" in
	--bundle) bundle=$2; shift 2 ;;
	--python) python=$2; shift 2 ;;
	--target-python) target_python=$2; shift 2 ;;
	--no-dracut) dracut=no; shift ;;
	--no-initramfs-tools) itools=no; shift ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

bundle_dest=$DESTDIR/usr/lib/provision/initramfs
if [ -z "$bundle" ]; then
	"$python" "$checkout/tools/build_zipapp.py" -o "$bundle_dest" --target-python "$target_python"
elif [ "$(cd "$bundle" && pwd)" != "$(mkdir -p "$bundle_dest" && cd "$bundle_dest" && pwd)" ]; then
	mkdir -p "$bundle_dest"
	rm -rf "$bundle_dest/native"
	cp -R "$bundle/provision.pyz" "$bundle/native" "$bundle/stdlib-modules.txt" "$bundle_dest/"
	[ -f "$bundle/bundle.json" ] && cp "$bundle/bundle.json" "$bundle_dest/"
fi

if [ "$itools" = yes ]; then
	share=$DESTDIR/usr/share/initramfs-tools
	install -D -m 0755 "$here/initramfs-tools/hooks/provision" "$share/hooks/provision"
	install -D -m 0755 "$here/initramfs-tools/hooks/provision-disks" "$share/hooks/provision-disks"
	install -D -m 0755 "$here/initramfs-tools/scripts/init-premount/provision" "$share/scripts/init-premount/provision"
	install -D -m 0755 "$here/initramfs-tools/scripts/local-bottom/provision" "$share/scripts/local-bottom/provision"
	install -D -m 0644 "$here/lib/pack_stdlib.py" "$share/provision/pack_stdlib.py"
	install -D -m 0644 "$here/lib/provision-lib.sh" "$share/provision/provision-lib.sh"
fi

if [ "$dracut" = yes ]; then
	mod=$DESTDIR/usr/lib/dracut/modules.d/30provision
	mkdir -p "$mod"
	for f in "$here"/dracut/30provision/*; do
		case "$f" in
		*.sh | *-generator) install -m 0755 "$f" "$mod/" ;;
		*) install -m 0644 "$f" "$mod/" ;;
		esac
	done
	install -m 0644 "$here/lib/pack_stdlib.py" "$mod/pack_stdlib.py"
fi

install -D -m 0644 "$here/systemd/provision-firstboot-complete.service" \
	"$DESTDIR/usr/lib/systemd/system/provision-firstboot-complete.service"

echo "install.sh: installed into ${DESTDIR:-/}; now rebuild the initramfs (update-initramfs -u or dracut -f)" >&2
