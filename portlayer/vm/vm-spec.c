/* vm-spec.c: validation of a VmSpec and the names of the driver's enums.
 *
 * Both driver tables validate with vm_spec_validate() before anything reaches
 * the hypervisor, so a bad spec fails the same way against the fake and the
 * real driver, with a message naming the field. The rules are those libvirt,
 * QEMU and the guest kernel impose (socket path length, virtio-blk serial
 * length, kernel command line size) plus our own naming rules, checked here
 * where the error can still be precise. */
#include "portlayer/vm/vm-driver.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char *const state_names[_VM_STATE_MAX] = {
        [VM_STATE_MISSING] = "missing",   [VM_STATE_SHUTOFF] = "shutoff", [VM_STATE_RUNNING] = "running",
        [VM_STATE_PAUSED] = "paused",     [VM_STATE_SHUTDOWN] = "shutdown", [VM_STATE_CRASHED] = "crashed",
        [VM_STATE_UNKNOWN] = "unknown",
};

static const char *const accel_names[_VM_ACCEL_MAX] = {
        [VM_ACCEL_AUTO] = "auto",
        [VM_ACCEL_KVM] = "kvm",
        [VM_ACCEL_TCG] = "tcg",
};

static const char *const disk_format_names[_VM_DISK_FORMAT_MAX] = {
        [VM_DISK_RAW] = "raw",
        [VM_DISK_QCOW2] = "qcow2",
};

static const char *const nic_type_names[_VM_NIC_TYPE_MAX] = {
        [VM_NIC_BRIDGE] = "bridge",
        [VM_NIC_USER] = "user",
};

const char *vm_nic_type_to_string(VmNicType t) {
        return (unsigned) t < _VM_NIC_TYPE_MAX ? nic_type_names[t] : "invalid";
}

const char *vm_state_to_string(VmState s) {
        return (unsigned) s < _VM_STATE_MAX ? state_names[s] : "invalid";
}

const char *vm_accel_to_string(VmAccel a) {
        return (unsigned) a < _VM_ACCEL_MAX ? accel_names[a] : "invalid";
}

int vm_accel_from_string(const char *s) {
        for (int i = 0; s && i < _VM_ACCEL_MAX; i++)
                if (strcmp(s, accel_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *vm_disk_format_to_string(VmDiskFormat f) {
        return (unsigned) f < _VM_DISK_FORMAT_MAX ? disk_format_names[f] : "invalid";
}

char **vm_names_free(char **names, size_t n) {
        for (size_t i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        return NULL;
}

bool vm_name_is_valid(const char *s, size_t max) {
        size_t n = 0;
        if (!s)
                return false;
        for (; s[n] != '\0'; n++) {
                char c = s[n];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '.' || c == '-';
                if (!ok || n >= max)
                        return false;
        }
        return n > 0;
}

static bool has_control_chars(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Absolute, bounded, no control characters (a newline would end a line of
 * QEMU's command line or of a log). */
static int check_path(const char *field, const char *path, size_t max, Error **err) {
        if (!path)
                return error_set(err, EINVAL, "%s: missing", field);
        if (path[0] != '/')
                return error_set(err, EINVAL, "%s '%s': must be an absolute path", field, path);
        if (strlen(path) > max)
                return error_set(err, EINVAL, "%s: longer than %zu bytes", field, max);
        if (has_control_chars(path))
                return error_set(err, EINVAL, "%s: contains control characters", field);
        return 0;
}

static int check_name(const char *field, const char *value, size_t max, Error **err) {
        if (!value)
                return error_set(err, EINVAL, "%s: missing", field);
        if (!vm_name_is_valid(value, max))
                return error_set(err, EINVAL, "%s '%.*s': must match [A-Za-z0-9_.-]{1,%zu}", field, 80, value,
                                 max);
        return 0;
}

static bool uuid_is_valid(const char *s) {
        static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        size_t i = 0;
        for (; s[i] != '\0' && pattern[i] != '\0'; i++) {
                char c = s[i];
                bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
                if (pattern[i] == '-' ? c != '-' : !hex)
                        return false;
        }
        return s[i] == '\0' && pattern[i] == '\0';
}

static int check_identity(const VmSpec *spec, Error **err) {
        int r = check_name("name", spec->name, VM_NAME_MAX, err);
        if (r < 0)
                return r;
        r = check_name("container_id", spec->container_id, VM_NAME_MAX, err);
        if (r < 0)
                return r;
        if (spec->pool_key && (r = check_name("pool_key", spec->pool_key, VM_NAME_MAX, err)) < 0)
                return r;
        if (spec->uuid && !uuid_is_valid(spec->uuid))
                return error_set(err, EINVAL, "uuid '%.*s': must be 8-4-4-4-12 hex digits", 80, spec->uuid);
        if (spec->memory_mib < VM_MEMORY_MIB_MIN || spec->memory_mib > VM_MEMORY_MIB_MAX)
                return error_set(err, EINVAL, "memory_mib %llu: must be %d..%d",
                                 (unsigned long long) spec->memory_mib, VM_MEMORY_MIB_MIN, VM_MEMORY_MIB_MAX);
        if (spec->vcpus < 1 || spec->vcpus > VM_VCPUS_MAX)
                return error_set(err, EINVAL, "vcpus %u: must be 1..%d", spec->vcpus, VM_VCPUS_MAX);
        if (spec->tb_cache_mib > VM_TB_CACHE_MIB_MAX)
                return error_set(err, EINVAL, "tb_cache_mib %u: must be 0 (QEMU's default) up to %d",
                                 spec->tb_cache_mib, VM_TB_CACHE_MIB_MAX);
        if ((unsigned) spec->accel >= _VM_ACCEL_MAX)
                return error_set(err, EINVAL, "accel %d: unknown", (int) spec->accel);
        return 0;
}

static int check_boot(const VmSpec *spec, Error **err) {
        int r = check_path("kernel", spec->kernel, PATH_MAX, err);
        if (r < 0)
                return r;
        if (spec->initrd && (r = check_path("initrd", spec->initrd, PATH_MAX, err)) < 0)
                return r;
        if (spec->cmdline) {
                if (strlen(spec->cmdline) > VM_CMDLINE_MAX)
                        return error_set(err, EINVAL, "cmdline: longer than %d bytes", VM_CMDLINE_MAX);
                if (has_control_chars(spec->cmdline))
                        return error_set(err, EINVAL, "cmdline: contains control characters (newline?)");
        }
        return check_path("console_log", spec->console_log, PATH_MAX, err);
}

static int check_disks(const VmSpec *spec, Error **err) {
        if (spec->n_disks > VM_DISKS_MAX)
                return error_set(err, EINVAL, "disks: %zu, at most %d", spec->n_disks, VM_DISKS_MAX);
        if (spec->n_disks > 0 && !spec->disks)
                return error_set(err, EINVAL, "disks: missing");
        for (size_t i = 0; i < spec->n_disks; i++) {
                const VmDisk *disk = &spec->disks[i];
                char field[48];
                snprintf(field, sizeof field, "disks[%zu].path", i);
                int r = check_path(field, disk->path, PATH_MAX, err);
                if (r < 0)
                        return r;
                snprintf(field, sizeof field, "disks[%zu].serial", i);
                if ((r = check_name(field, disk->serial, VM_DISK_SERIAL_MAX, err)) < 0)
                        return r;
                if ((unsigned) disk->format >= _VM_DISK_FORMAT_MAX)
                        return error_set(err, EINVAL, "disks[%zu].format %d: unknown", i, (int) disk->format);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(spec->disks[j].serial, disk->serial) == 0)
                                return error_set(err, EINVAL, "disks[%zu].serial '%s': used twice", i,
                                                 disk->serial);
        }
        return 0;
}

static int check_channel(const VmSpec *spec, Error **err) {
        if (spec->agent_channel && !spec->agent_socket)
                return error_set(err, EINVAL, "agent_channel: given without agent_socket");
        if (!spec->agent_socket)
                return 0;
        int r = check_path("agent_socket", spec->agent_socket, VM_SOCKET_PATH_MAX, err);
        if (r < 0)
                return r;
        if (spec->agent_channel)
                return check_name("agent_channel", spec->agent_channel, VM_NAME_MAX, err);
        return 0;
}

/* "xx:xx:xx:xx:xx:xx", lower-case hex, and an address a NIC may have:
 * unicast (bit 0 of the first byte clear) and locally administered (bit 1
 * set), so it never collides with a vendor's. */
static int check_mac(const char *field, const char *mac, Error **err) {
        if (!mac)
                return error_set(err, EINVAL, "%s: missing", field);
        unsigned first = 0;
        bool ok = strlen(mac) == 17;
        for (size_t i = 0; ok && i < 17; i++) {
                char c = mac[i];
                if (i % 3 == 2)
                        ok = c == ':';
                else
                        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }
        if (!ok)
                return error_set(err, EINVAL, "%s '%.*s': must be six lower-case hex bytes, xx:xx:xx:xx:xx:xx", field,
                                 40, mac);
        sscanf(mac, "%2x", &first);
        if (first & 1)
                return error_set(err, EINVAL, "%s '%s': a multicast address, a NIC needs a unicast one", field, mac);
        if (!(first & 2))
                return error_set(err, EINVAL,
                                 "%s '%s': not locally administered (the first byte needs bit 1 set, e.g. 0a:...)",
                                 field, mac);
        return 0;
}

int vm_nic_validate(const VmNic *nic, size_t i, Error **err) {
        char field[48];
        int r;
        if ((unsigned) nic->type >= _VM_NIC_TYPE_MAX)
                return error_set(err, EINVAL, "nics[%zu].type %d: unknown", i, (int) nic->type);
        snprintf(field, sizeof field, "nics[%zu].mac", i);
        if ((r = check_mac(field, nic->mac, err)) < 0)
                return r;
        if (nic->mtu != 0 && (nic->mtu < VM_MTU_MIN || nic->mtu > VM_MTU_MAX))
                return error_set(err, EINVAL, "nics[%zu].mtu %u: must be 0 (the bridge's) or %d..%d", i, nic->mtu,
                                 VM_MTU_MIN, VM_MTU_MAX);
        if (nic->type == VM_NIC_USER) {
                if (nic->bridge || nic->tap)
                        return error_set(err, EINVAL, "nics[%zu]: a user-mode NIC has no bridge and no tap", i);
                if (nic->mtu)
                        return error_set(err, EINVAL, "nics[%zu].mtu %u: a user-mode NIC has QEMU's fixed MTU", i,
                                         nic->mtu);
                return 0;
        }
        snprintf(field, sizeof field, "nics[%zu].bridge", i);
        if ((r = check_name(field, nic->bridge, VM_TAP_NAME_MAX, err)) < 0)
                return r;
        snprintf(field, sizeof field, "nics[%zu].tap", i);
        if (nic->tap && (r = check_name(field, nic->tap, VM_TAP_NAME_MAX, err)) < 0)
                return r;
        /* libvirt reserves these prefixes for names it makes up itself. */
        if (nic->tap && (strncmp(nic->tap, "vnet", 4) == 0 || strncmp(nic->tap, "macvtap", 7) == 0))
                return error_set(err, EINVAL, "nics[%zu].tap '%s': vnet* and macvtap* are libvirt's own names", i,
                                 nic->tap);
        return 0;
}

static int check_nics(const VmSpec *spec, Error **err) {
        if (spec->n_nics > VM_NICS_MAX)
                return error_set(err, EINVAL, "nics: %zu, at most %d", spec->n_nics, VM_NICS_MAX);
        if (spec->n_nics > 0 && !spec->nics)
                return error_set(err, EINVAL, "nics: missing");
        size_t n_user = 0;
        for (size_t i = 0; i < spec->n_nics; i++) {
                const VmNic *nic = &spec->nics[i];
                int r = vm_nic_validate(nic, i, err);
                if (r < 0)
                        return r;
                if (nic->type == VM_NIC_USER && ++n_user > 1)
                        return error_set(err, EINVAL, "nics[%zu]: at most one user-mode NIC", i);
                for (size_t j = 0; j < i; j++) {
                        if (strcmp(spec->nics[j].mac, nic->mac) == 0)
                                return error_set(err, EINVAL, "nics[%zu].mac '%s': used twice", i, nic->mac);
                        if (nic->tap && spec->nics[j].tap && strcmp(spec->nics[j].tap, nic->tap) == 0)
                                return error_set(err, EINVAL, "nics[%zu].tap '%s': used twice", i, nic->tap);
                }
        }
        return 0;
}

static int check_filesystems(const VmSpec *spec, Error **err) {
        if (spec->n_filesystems > VM_FILESYSTEMS_MAX)
                return error_set(err, EINVAL, "filesystems: %zu, at most %d", spec->n_filesystems,
                                 VM_FILESYSTEMS_MAX);
        if (spec->n_filesystems > 0 && !spec->filesystems)
                return error_set(err, EINVAL, "filesystems: missing");
        for (size_t i = 0; i < spec->n_filesystems; i++) {
                const VmFilesystem *fs = &spec->filesystems[i];
                char field[48];
                snprintf(field, sizeof field, "filesystems[%zu].source", i);
                int r = check_path(field, fs->source, PATH_MAX, err);
                if (r < 0)
                        return r;
                snprintf(field, sizeof field, "filesystems[%zu].tag", i);
                if ((r = check_name(field, fs->tag, VM_FS_TAG_MAX, err)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(spec->filesystems[j].tag, fs->tag) == 0)
                                return error_set(err, EINVAL, "filesystems[%zu].tag '%s': used twice", i, fs->tag);
        }
        return 0;
}

static bool ipv4_is_valid(const char *s) {
        struct in_addr a;
        return inet_pton(AF_INET, s, &a) == 1;
}

int vm_forward_validate(const VmForward *fw, Error **err) {
        if (!fw)
                return error_set(err, EINVAL, "invalid port forward: none given");
        if (!fw->protocol || (strcmp(fw->protocol, "tcp") != 0 && strcmp(fw->protocol, "udp") != 0))
                return error_set(err, EINVAL, "invalid port forward: protocol '%.*s': must be tcp or udp", 20,
                                 fw->protocol ? fw->protocol : "");
        if (fw->host_ip && fw->host_ip[0] && !ipv4_is_valid(fw->host_ip))
                return error_set(err, EINVAL, "invalid port forward: host_ip '%.*s': not an IPv4 address", 64,
                                 fw->host_ip);
        if (fw->host_port == 0 || fw->guest_port == 0)
                return error_set(err, EINVAL, "invalid port forward: %s port 0: must be 1..65535",
                                 fw->host_port == 0 ? "host" : "guest");
        return 0;
}

int vm_spec_validate(const VmSpec *spec, Error **err) {
        int r;
        if (!spec)
                return error_set(err, EINVAL, "no VM spec");
        if ((r = check_identity(spec, err)) < 0 || (r = check_boot(spec, err)) < 0 ||
            (r = check_disks(spec, err)) < 0 || (r = check_channel(spec, err)) < 0 ||
            (r = check_nics(spec, err)) < 0 || (r = check_filesystems(spec, err)) < 0) {
                error_prefix(err, "invalid VM spec");
                return r;
        }
        return 0;
}
