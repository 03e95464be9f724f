#!/bin/bash
# shellcheck disable=SC2154 # moddir, initdir, systemd*dir come from dracut
# dracut module: run provision on first boot, one systemd unit per stage.
# Build with `dracut --add provision` (or add_dracutmodules+=" provision ").
# Settings as for the initramfs-tools hook: PROVISION_BUNDLE, PROVISION_PYTHON,
# PROVISION_DISK_FEATURES (environment or /etc/provision/initramfs.conf).

check() {
    # Only when asked for: first-boot provisioning is an image builder's choice.
    return 255
}

depends() {
    echo systemd
}

_provision_settings() {
    # shellcheck disable=SC1091
    [ -r /etc/provision/initramfs.conf ] && . /etc/provision/initramfs.conf
    PROVISION_BUNDLE=${PROVISION_BUNDLE:-/usr/lib/provision/initramfs}
    PROVISION_PYTHON=${PROVISION_PYTHON:-/usr/bin/python3}
}

installkernel() {
    _provision_settings
    local mods="isofs qemu_fw_cfg virtio_net"
    for feature in ${PROVISION_DISK_FEATURES:-ext4 vfat swap}; do
        case "$feature" in
        ext4 | xfs | btrfs | vfat) mods="$mods $feature" ;;
        raid) mods="$mods raid0 raid1 raid10 raid456" ;;
        luks) mods="$mods dm_crypt" ;;
        esac
    done
    # shellcheck disable=SC2086
    hostonly='' instmods -o $mods
}

# Install a shared object and the libraries it links (dracut-install resolves
# those for executables; extension modules need the same).
_provision_inst_so() {
    local so=$1 dest=${2:-$1} dep
    inst_library "$so" "$dest"
    while read -r dep; do
        [[ -n $dep ]] && inst_library "$dep"
    done < <(ldd "$so" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p')
}

install() {
    _provision_settings
    local bundle=$PROVISION_BUNDLE so f
    if [ ! -r "$bundle/provision.pyz" ]; then
        derror "provision: no engine bundle in $bundle (build it with tools/build_zipapp.py)"
        return 1
    fi
    inst_binary "$(readlink -f "$PROVISION_PYTHON")" /usr/bin/python3
    "$PROVISION_PYTHON" -I -S "$moddir/pack_stdlib.py" "$bundle/stdlib-modules.txt" "$initdir" \
        >"$initdir/.provision-ext" || return 1
    while read -r so; do
        _provision_inst_so "$so"
    done <"$initdir/.provision-ext"
    rm -f "$initdir/.provision-ext"

    inst_simple "$bundle/provision.pyz" /usr/lib/provision/provision.pyz
    # The image's own kernel-arguments editor, if it has one (docs/embedding.md).
    if [[ -x /usr/lib/provision/kargs-helper ]]; then
        inst_script /usr/lib/provision/kargs-helper /usr/lib/provision/kargs-helper
    fi
    while read -r f; do
        case "$f" in
        *.so) _provision_inst_so "$f" "/usr/lib/provision/${f#"$bundle"/}" ;;
        *) inst_simple "$f" "/usr/lib/provision/${f#"$bundle"/}" ;;
        esac
    done < <(find "$bundle/native" -type f)

    inst_multiple -o sfdisk partx wipefs blkid blockdev udevadm mount umount modprobe ip
    for feature in ${PROVISION_DISK_FEATURES:-ext4 vfat swap}; do
        case "$feature" in
        ext4) inst_multiple -o mkfs.ext4 mke2fs /etc/mke2fs.conf resize2fs e2fsck ;;
        xfs) inst_multiple -o mkfs.xfs xfs_growfs ;;
        btrfs) inst_multiple -o mkfs.btrfs btrfs ;;
        vfat) inst_multiple -o mkfs.vfat mkfs.fat ;;
        swap) inst_multiple -o mkswap ;;
        lvm) inst_multiple -o pvresize lvm ;;
        raid) inst_multiple -o mdadm ;;
        luks) inst_multiple -o cryptsetup ;;
        # What binding LUKS volumes with clevis runs (see the initramfs-tools
        # hook for why each is there); the TCTI is loaded with dlopen.
        clevis)
            inst_multiple -o bash jose cryptsetup clevis pwmake curl tpm2_create tpm2_createpolicy \
                tpm2_createprimary tpm2_flushcontext tpm2_load tpm2_pcrread tpm2_unseal
            for f in /usr/bin/clevis-*; do inst_multiple -o "$f"; done
            inst_libdir_file "libtss2-tcti-device.so*"
            mkdir -p "$initdir/etc/security"
            echo "dictcheck = 0" > "$initdir/etc/security/pwquality.conf" ;;
        # systemd-cryptenroll (systemdTpm2) loads the TPM2 libraries with dlopen.
        cryptenroll)
            inst_multiple -o cryptsetup systemd-cryptenroll
            inst_libdir_file "libtss2-esys.so*" "libtss2-rc.so*" "libtss2-mu.so*" "libtss2-tcti-device.so*" ;;
        esac
    done

    # The image's base configs and built-in user config (Ignition's and ours):
    # the fetch stage merges them as Ignition does.
    local dir part
    for dir in /usr/lib/ignition /etc/ignition /usr/lib/provision /etc/provision; do
        for part in base.d base.platform.d user.ign user.json user.yaml user.yml; do
            [ -e "$dir/$part" ] || continue
            while read -r f; do
                inst_simple "$f" "$f"
            done < <(find "$dir/$part" -type f)
        done
    done

    inst_script "$moddir/provision-generator" "$systemdutildir/system-generators/provision-generator"
    inst_script "$moddir/provision-network.sh" /usr/lib/provision/provision-network.sh
    inst_script "$moddir/provision-sysroot.sh" /usr/lib/provision/provision-sysroot.sh
    inst_script "$moddir/provision-disks.sh" /usr/lib/provision/provision-disks.sh
    inst_simple "$moddir/provision-dhcp.network" /usr/lib/provision/provision-dhcp.network
    for f in "$moddir"/*.service "$moddir"/*.target; do
        inst_simple "$f" "$systemdsystemunitdir/${f##*/}"
    done
}
