/* test-vm-xml.c: domain XML from a VmSpec, spec validation, and reading our
 * metadata back from XML that libvirt (or anyone with the connection) wrote.
 *
 * The generated XML is compared byte for byte with golden files in
 * tests/portlayer/vm/golden/ (tests/lib/test-golden.h). After an intended
 * change, rerun with PL_UPDATE_GOLDEN=1 to rewrite them and review the diff. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/error.h"
#include "common/base/io-util.h"
#include "portlayer/vm/vm-driver.h"
#include "vm-xml-internal.h"

static const VmDisk tcg_disks[] = {
        { .path = "/var/lib/portlayer/containers/c1/root.qcow2", .format = VM_DISK_QCOW2, .serial = "pl-root" },
};

/* Characters XML must escape, in every kind of field that allows them. */
static const VmSpec tcg_spec = {
        .name = "pl-c1",
        .container_id = "c1",
        .memory_mib = 512,
        .vcpus = 2,
        .accel = VM_ACCEL_TCG,
        .kernel = "/var/cache/portlayer/kernel/current/vmlinuz",
        .initrd = "/var/cache/portlayer/initramfs/a&b<c>.cpio.gz",
        .cmdline = "console=ttyS0 panic=-1 quiet pl.env=\"A&B<C>'D'\"",
        .disks = tcg_disks,
        .n_disks = 1,
        .agent_socket = "/run/portlayer/c1/agent.sock",
        .console_log = "/var/lib/portlayer/containers/c1/console.log",
        .tb_cache_mib = 32,         /* <tcg><tb-cache> under TCG */
        .free_page_reporting = true, /* a reporting-only virtio balloon */
};

static const VmDisk kvm_disks[] = {
        { .path = "/images/busybox.ext4", .format = VM_DISK_RAW, .serial = "pl-root", .read_only = true },
        { .path = "/volumes/data.raw", .format = VM_DISK_RAW, .serial = "pl-vol-data" },
};

static const VmSpec kvm_spec = {
        .name = "pl-c2",
        .uuid = "4c03f284-fa8a-43b9-8515-2a9fdd0586e4",
        .container_id = "c2",
        .memory_mib = 256,
        .vcpus = 1,
        .accel = VM_ACCEL_KVM,
        .kernel = "/k/vmlinuz",
        .cmdline = "console=ttyS0",
        .disks = kvm_disks,
        .n_disks = 2,
        .agent_socket = "/run/pl/c2.sock",
        .agent_channel = "org.portlayer.agent.1",
        .console_log = "/run/pl/c2.log",
        .vsock = true,
        .owner = &(const VmOwner){.uid = 200001, .gid = 200001},
        .no_share_pages = true, /* <memoryBacking><nosharepages/> alone */
};

/* Every kind of NIC and filesystem. */
static const VmNic net_nics[] = {
        { .type = VM_NIC_BRIDGE, .mac = "0a:70:6c:00:00:01", .bridge = "plbr0", .tap = "pl0123456789ab", .mtu = 1400 },
        { .type = VM_NIC_BRIDGE, .mac = "0a:70:6c:00:00:02", .bridge = "plbr1" },
        { .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:03" },
};

static const VmFilesystem net_filesystems[] = {
        { .source = "/srv/site & <more>", .tag = "pl-fs-0", .read_only = true },
        { .source = "/var/lib/portlayer/shared", .tag = "pl-fs-1" },
};

static const VmSpec net_spec = {
        .name = "pl-c3",
        .container_id = "c3",
        .memory_mib = 256,
        .vcpus = 1,
        .kernel = "/k/vmlinuz",
        .disks = kvm_disks,
        .n_disks = 2,
        .console_log = "/run/pl/c3.log",
        .nics = net_nics,
        .n_nics = 3,
        .filesystems = net_filesystems,
        .n_filesystems = 2,
        .no_share_pages = true, /* nosharepages before memfd's source and access */
};

static void check_golden(const VmSpec *spec, VmAccel accel, const char *name) {
        _cleanup_free_ char *xml = NULL;
        _cleanup_error_ Error *err = NULL;

        assert_int_equal(vm_xml_build(spec, accel, &xml, &err), 0);
        test_assert_golden(xml, name);
}

static void test_golden_tcg(void **state) {
        check_golden(&tcg_spec, VM_ACCEL_TCG, "vm-tcg.xml");
}

static void test_golden_kvm_vsock_readonly(void **state) {
        check_golden(&kvm_spec, VM_ACCEL_KVM, "vm-kvm-vsock-readonly.xml");
}

static void test_golden_nics_filesystems(void **state) {
        check_golden(&net_spec, VM_ACCEL_TCG, "vm-nics-filesystems.xml");
}

/* No filesystem: private memory, as before; a filesystem: shared memfd;
 * nosharepages only when asked for, with or without a filesystem. */
static void test_memory_backing_only_with_filesystems(void **state) {
        _cleanup_free_ char *plain = NULL, *shared = NULL, *unmerged = NULL;
        VmSpec spec = net_spec;
        spec.n_filesystems = 0;
        spec.no_share_pages = false;
        assert_int_equal(vm_xml_build(&spec, VM_ACCEL_TCG, &plain, NULL), 0);
        assert_null(strstr(plain, "memoryBacking"));
        assert_null(strstr(plain, "virtiofs"));
        spec.n_filesystems = 1;
        assert_int_equal(vm_xml_build(&spec, VM_ACCEL_TCG, &shared, NULL), 0);
        assert_non_null(strstr(shared, "<memoryBacking>\n    <source type=\"memfd\"/>\n    <access mode=\"shared\"/>"));
        assert_null(strstr(shared, "nosharepages"));
        spec.n_filesystems = 0;
        spec.no_share_pages = true;
        assert_int_equal(vm_xml_build(&spec, VM_ACCEL_TCG, &unmerged, NULL), 0);
        assert_non_null(strstr(unmerged, "<memoryBacking>\n    <nosharepages/>\n  </memoryBacking>"));
}

static void test_build_is_deterministic(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        assert_int_equal(vm_xml_build(&tcg_spec, VM_ACCEL_TCG, &a, NULL), 0);
        assert_int_equal(vm_xml_build(&tcg_spec, VM_ACCEL_TCG, &b, NULL), 0);
        assert_string_equal(a, b);
        /* The accelerator passed in wins over the spec's request. */
        assert_non_null(strstr(a, "<domain type=\"qemu\">"));
        assert_non_null(strstr(a, "<cpu mode=\"maximum\"/>"));
}

static void test_build_needs_resolved_accel(void **state) {
        _cleanup_free_ char *xml = NULL;
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(vm_xml_build(&tcg_spec, VM_ACCEL_AUTO, &xml, &err), -EINVAL);
        assert_null(xml);
        assert_string_equal(error_text(err), "domain XML needs a resolved accelerator, not 'auto'");
}

/* --- validation --- */

typedef void (*Mutate)(VmSpec *spec, VmDisk *disk);

static void bad_name_slash(VmSpec *s, VmDisk *d) { s->name = "pl/../x"; }
static void bad_name_empty(VmSpec *s, VmDisk *d) { s->name = ""; }
static void bad_name_long(VmSpec *s, VmDisk *d) {
        s->name = "pl-01234567890123456789012345678901234567890123456789012345678901";
}
static void bad_container_id(VmSpec *s, VmDisk *d) { s->container_id = NULL; }
static void bad_uuid(VmSpec *s, VmDisk *d) { s->uuid = "4c03f284-fa8a-43b9-8515-2a9fdd0586e"; }
static void bad_kernel_relative(VmSpec *s, VmDisk *d) { s->kernel = "vmlinuz"; }
static void bad_kernel_missing(VmSpec *s, VmDisk *d) { s->kernel = NULL; }
static void bad_initrd_newline(VmSpec *s, VmDisk *d) { s->initrd = "/boot/init\nrd"; }
static void bad_cmdline_newline(VmSpec *s, VmDisk *d) { s->cmdline = "console=ttyS0\ninit=/bin/sh"; }
static void bad_memory_low(VmSpec *s, VmDisk *d) { s->memory_mib = 63; }
static void bad_memory_high(VmSpec *s, VmDisk *d) { s->memory_mib = 1048577; }
static void bad_vcpus_zero(VmSpec *s, VmDisk *d) { s->vcpus = 0; }
static void bad_tb_cache(VmSpec *s, VmDisk *d) { s->tb_cache_mib = VM_TB_CACHE_MIB_MAX + 1; }
static void bad_vcpus_high(VmSpec *s, VmDisk *d) { s->vcpus = 65; }
static void bad_accel(VmSpec *s, VmDisk *d) { s->accel = (VmAccel) 7; }
static void bad_disk_relative(VmSpec *s, VmDisk *d) { d->path = "root.img"; }
static void bad_disk_serial_long(VmSpec *s, VmDisk *d) { d->serial = "pl-root-0123456789012"; }
static void bad_disk_format(VmSpec *s, VmDisk *d) { d->format = (VmDiskFormat) 9; }
static void bad_socket_long(VmSpec *s, VmDisk *d) {
        s->agent_socket = "/run/portlayer/0123456789012345678901234567890123456789012345678901234567890123456789"
                          "0123456789012345/agent.sock";
}
static void bad_channel_name(VmSpec *s, VmDisk *d) { s->agent_channel = "org portlayer"; }
static void bad_console_missing(VmSpec *s, VmDisk *d) { s->console_log = NULL; }
static void bad_console_utf8(VmSpec *s, VmDisk *d) { s->console_log = "/tmp/\xff\xfe.log"; }

/* NICs and filesystems: one bad field in an otherwise good list. */
static VmNic nic_buf[VM_NICS_MAX + 1];
static VmFilesystem fs_buf[VM_FILESYSTEMS_MAX + 1];
static void with_nic(VmSpec *s, VmNic nic) {
        nic_buf[0] = (VmNic){ .type = VM_NIC_BRIDGE, .mac = "0a:70:6c:00:00:01", .bridge = "plbr0" };
        nic_buf[1] = nic;
        s->nics = nic_buf;
        s->n_nics = 2;
}
static void with_fs(VmSpec *s, VmFilesystem fs) {
        fs_buf[0] = (VmFilesystem){ .source = "/srv/a", .tag = "a" };
        fs_buf[1] = fs;
        s->filesystems = fs_buf;
        s->n_filesystems = 2;
}
static void bad_mac_missing(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .bridge = "b" }); }
static void bad_mac_upper(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0A:70:6C:00:00:02", .bridge = "b" }); }
static void bad_mac_short(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:2", .bridge = "b" }); }
static void bad_mac_sep(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a-70-6c-00-00-02", .bridge = "b" }); }
static void bad_mac_multicast(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0b:70:6c:00:00:02", .bridge = "b" }); }
static void bad_mac_global(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "00:16:3e:00:00:02", .bridge = "b" }); }
static void bad_mac_twice(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:01", .bridge = "b" }); }
static void bad_nic_type(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .type = (VmNicType) 5, .mac = "0a:00:00:00:00:02" }); }
static void bad_bridge_missing(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02" }); }
static void bad_bridge_name(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "br 0" }); }
static void bad_tap_long(VmSpec *s, VmDisk *d) {
        with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "b", .tap = "pl0123456789abcd" });
}
static void bad_tap_chars(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "b", .tap = "pl/x" }); }
static void bad_tap_vnet(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "b", .tap = "vnet3" }); }
static void bad_mtu(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "b", .mtu = 67 }); }
static void bad_user_bridge(VmSpec *s, VmDisk *d) {
        with_nic(s, (VmNic){ .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:02", .bridge = "b" });
}
static void bad_user_mtu(VmSpec *s, VmDisk *d) { with_nic(s, (VmNic){ .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:02", .mtu = 1400 }); }
static void bad_nics_many(VmSpec *s, VmDisk *d) {
        with_nic(s, (VmNic){ .mac = "0a:70:6c:00:00:02", .bridge = "b" });
        s->n_nics = VM_NICS_MAX + 1;
}
static void bad_nics_null(VmSpec *s, VmDisk *d) { s->n_nics = 1; }
static void bad_fs_relative(VmSpec *s, VmDisk *d) { with_fs(s, (VmFilesystem){ .source = "srv", .tag = "b" }); }
static void bad_fs_tag_long(VmSpec *s, VmDisk *d) {
        with_fs(s, (VmFilesystem){ .source = "/srv", .tag = "t0123456789012345678901234567890123456" });
}
static void bad_fs_tag_chars(VmSpec *s, VmDisk *d) { with_fs(s, (VmFilesystem){ .source = "/srv", .tag = "a,b" }); }
static void bad_fs_tag_twice(VmSpec *s, VmDisk *d) { with_fs(s, (VmFilesystem){ .source = "/srv", .tag = "a" }); }
static void bad_fs_many(VmSpec *s, VmDisk *d) {
        with_fs(s, (VmFilesystem){ .source = "/srv", .tag = "b" });
        s->n_filesystems = VM_FILESYSTEMS_MAX + 1;
}
static void bad_fs_utf8(VmSpec *s, VmDisk *d) { with_fs(s, (VmFilesystem){ .source = "/srv/\xff", .tag = "b" }); }

static const struct {
        Mutate mutate;
        const char *message; /* expected prefix after "invalid VM spec: " */
} bad_specs[] = {
        { bad_name_slash, "name 'pl/../x': must match [A-Za-z0-9_.-]{1,64}" },
        { bad_name_empty, "name '': must match" },
        { bad_name_long, "name 'pl-0123" },
        { bad_container_id, "container_id: missing" },
        { bad_uuid, "uuid '4c03f284-fa8a-43b9-8515-2a9fdd0586e': must be 8-4-4-4-12 hex digits" },
        { bad_kernel_relative, "kernel 'vmlinuz': must be an absolute path" },
        { bad_kernel_missing, "kernel: missing" },
        { bad_initrd_newline, "initrd: contains control characters" },
        { bad_cmdline_newline, "cmdline: contains control characters (newline?)" },
        { bad_memory_low, "memory_mib 63: must be 64..1048576" },
        { bad_memory_high, "memory_mib 1048577: must be 64..1048576" },
        { bad_vcpus_zero, "vcpus 0: must be 1..64" },
        { bad_tb_cache, "tb_cache_mib 4097: must be 0 (QEMU's default) up to 4096" },
        { bad_vcpus_high, "vcpus 65: must be 1..64" },
        { bad_accel, "accel 7: unknown" },
        { bad_disk_relative, "disks[0].path 'root.img': must be an absolute path" },
        { bad_disk_serial_long, "disks[0].serial 'pl-root-0123456789012': must match [A-Za-z0-9_.-]{1,20}" },
        { bad_disk_format, "disks[0].format 9: unknown" },
        { bad_socket_long, "agent_socket: longer than 107 bytes" },
        { bad_channel_name, "agent_channel 'org portlayer': must match" },
        { bad_console_missing, "console_log: missing" },
        { bad_console_utf8, "'/tmp/\xff\xfe.log' is not valid UTF-8" },
        { bad_mac_missing, "nics[1].mac: missing" },
        { bad_mac_upper, "nics[1].mac '0A:70:6C:00:00:02': must be six lower-case hex bytes, xx:xx:xx:xx:xx:xx" },
        { bad_mac_short, "nics[1].mac '0a:70:6c:00:00:2': must be six" },
        { bad_mac_sep, "nics[1].mac '0a-70-6c-00-00-02': must be six" },
        { bad_mac_multicast, "nics[1].mac '0b:70:6c:00:00:02': a multicast address, a NIC needs a unicast one" },
        { bad_mac_global, "nics[1].mac '00:16:3e:00:00:02': not locally administered" },
        { bad_mac_twice, "nics[1].mac '0a:70:6c:00:00:01': used twice" },
        { bad_nic_type, "nics[1].type 5: unknown" },
        { bad_bridge_missing, "nics[1].bridge: missing" },
        { bad_bridge_name, "nics[1].bridge 'br 0': must match [A-Za-z0-9_.-]{1,15}" },
        { bad_tap_long, "nics[1].tap 'pl0123456789abcd': must match [A-Za-z0-9_.-]{1,15}" },
        { bad_tap_chars, "nics[1].tap 'pl/x': must match" },
        { bad_tap_vnet, "nics[1].tap 'vnet3': vnet* and macvtap* are libvirt's own names" },
        { bad_mtu, "nics[1].mtu 67: must be 0 (the bridge's) or 68..65535" },
        { bad_user_bridge, "nics[1]: a user-mode NIC has no bridge and no tap" },
        { bad_user_mtu, "nics[1].mtu 1400: a user-mode NIC has QEMU's fixed MTU" },
        { bad_nics_many, "nics: 5, at most 4" },
        { bad_nics_null, "nics: missing" },
        { bad_fs_relative, "filesystems[1].source 'srv': must be an absolute path" },
        { bad_fs_tag_long, "filesystems[1].tag 't0123456789012345678901234567890123456': must match [A-Za-z0-9_.-]{1,36}" },
        { bad_fs_tag_chars, "filesystems[1].tag 'a,b': must match" },
        { bad_fs_tag_twice, "filesystems[1].tag 'a': used twice" },
        { bad_fs_many, "filesystems: 9, at most 8" },
        { bad_fs_utf8, "filesystems[1].source is not valid UTF-8" },
};

static void test_validation_errors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(bad_specs); i++) {
                VmSpec spec = tcg_spec;
                VmDisk disk = tcg_disks[0];
                spec.disks = &disk;
                bad_specs[i].mutate(&spec, &disk);

                _cleanup_free_ char *xml = NULL;
                _cleanup_error_ Error *err = NULL;
                if (vm_xml_build(&spec, VM_ACCEL_TCG, &xml, &err) != -EINVAL)
                        fail_msg("case %zu: accepted", i);
                assert_null(xml);
                const char *prefix = "invalid VM spec: ";
                const char *msg = error_text(err);
                if (strncmp(msg, prefix, strlen(prefix)) != 0 ||
                    strncmp(msg + strlen(prefix), bad_specs[i].message, strlen(bad_specs[i].message)) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s%s...\"", i, msg, prefix, bad_specs[i].message);
        }
}

static void test_validation_disk_rules(void **state) {
        VmDisk disks[2] = { tcg_disks[0], tcg_disks[0] };
        VmSpec spec = tcg_spec;
        spec.disks = disks;
        spec.n_disks = 2;
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: disks[1].serial 'pl-root': used twice");

        err = error_free(err);
        spec.n_disks = VM_DISKS_MAX + 1;
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: disks: 17, at most 16");

        err = error_free(err);
        spec = tcg_spec;
        spec.agent_socket = NULL;
        spec.agent_channel = "org.portlayer.agent.0";
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: agent_channel: given without agent_socket");

        assert_int_equal(vm_spec_validate(NULL, NULL), -EINVAL);
        /* The minimum: no initrd, cmdline, disks or channel. */
        VmSpec minimal = { .name = "m", .container_id = "m", .memory_mib = 64, .vcpus = 1,
                           .kernel = "/k", .console_log = "/c" };
        assert_int_equal(vm_spec_validate(&minimal, NULL), 0);
}

static void test_validation_nic_rules(void **state) {
        _cleanup_error_ Error *err = NULL;
        VmNic two_users[2] = {
                { .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:01" },
                { .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:02" },
        };
        VmSpec spec = net_spec;
        spec.nics = two_users;
        spec.n_nics = 2;
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: nics[1]: at most one user-mode NIC");

        err = error_free(err);
        VmNic same_tap[2] = {
                { .mac = "0a:70:6c:00:00:01", .bridge = "b", .tap = "pl1" },
                { .mac = "0a:70:6c:00:00:02", .bridge = "b", .tap = "pl1" },
        };
        spec.nics = same_tap;
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: nics[1].tap 'pl1': used twice");
        /* 15 bytes is the limit, not 14; 68 and 65535 are valid MTUs */
        VmNic edge[2] = {
                { .mac = "0a:70:6c:00:00:01", .bridge = "b012345678901234", .tap = "pl0123456789abc", .mtu = 68 },
                { .mac = "fe:ff:ff:ff:ff:ff", .bridge = "b", .mtu = 65535 },
        };
        spec.nics = edge;
        err = error_free(err);
        assert_int_equal(vm_spec_validate(&spec, &err), -EINVAL); /* the bridge name is 16 bytes */
        edge[0].bridge = "b01234567890123";
        err = error_free(err);
        assert_int_equal(vm_spec_validate(&spec, &err), 0);
}

static void test_forward_validation(void **state) {
        const struct {
                VmForward fw;
                const char *message;
        } cases[] = {
                { { .protocol = "sctp", .host_port = 1, .guest_port = 1 }, "protocol 'sctp': must be tcp or udp" },
                { { .protocol = NULL, .host_port = 1, .guest_port = 1 }, "protocol '': must be tcp or udp" },
                { { .protocol = "tcp", .host_ip = "localhost", .host_port = 1, .guest_port = 1 },
                  "host_ip 'localhost': not an IPv4 address" },
                { { .protocol = "tcp", .host_ip = "::1", .host_port = 1, .guest_port = 1 },
                  "host_ip '::1': not an IPv4 address" },
                { { .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 0, .guest_port = 1 },
                  "host port 0: must be 1..65535" },
                { { .protocol = "udp", .host_port = 8080, .guest_port = 0 }, "guest port 0: must be 1..65535" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_error_ Error *err = NULL;
                assert_int_equal(vm_forward_validate(&cases[i].fw, &err), -EINVAL);
                const char *msg = error_text(err), *prefix = "invalid port forward: ";
                if (strncmp(msg, prefix, strlen(prefix)) != 0 || strcmp(msg + strlen(prefix), cases[i].message) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s%s\"", i, msg, prefix, cases[i].message);
        }
        assert_int_equal(vm_forward_validate(NULL, NULL), -EINVAL);
        VmForward ok[] = {
                { .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 8080, .guest_port = 80 },
                { .protocol = "udp", .host_ip = "", .host_port = 65535, .guest_port = 53 },
                { .protocol = "tcp", .host_port = 1, .guest_port = 65535 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                assert_int_equal(vm_forward_validate(&ok[i], NULL), 0);
}

/* The netdev id of the user-mode NIC, from a live domain XML as libvirt
 * writes it (aliases net0, net1... in device order). */
static void test_user_netdev(void **state) {
        _cleanup_free_ char *id = NULL;
        assert_int_equal(vm_xml_user_netdev("<domain><devices>"
                                            "<interface type='bridge'><alias name='net0'/></interface>"
                                            "<interface type='user'><mac address='0a:70:6c:00:00:03'/>"
                                            "<alias name='net1'/></interface></devices></domain>", &id),
                         0);
        assert_string_equal(id, "hostnet1");
        char *none = NULL;
        assert_int_equal(vm_xml_user_netdev("<domain><devices><interface type='bridge'><alias name='net0'/>"
                                            "</interface></devices></domain>", &none),
                         -ENOENT);
        assert_int_equal(vm_xml_user_netdev("<domain><devices><interface type='user'/></devices></domain>", &none),
                         -ENOENT); /* defined, not running: no alias */
        /* An alias that would smuggle a second monitor command. */
        assert_int_equal(vm_xml_user_netdev("<domain><devices><interface type='user'>"
                                            "<alias name='net0 tcp::22-:22'/></interface></devices></domain>", &none),
                         -EINVAL);
        assert_int_equal(vm_xml_user_netdev("<!DOCTYPE x><domain/>", &none), -EBADMSG);
        assert_null(none);
}

static void test_names(void **state) {
        assert_true(vm_name_is_valid("pl-abc_1.2", VM_NAME_MAX));
        assert_false(vm_name_is_valid("", VM_NAME_MAX));
        assert_false(vm_name_is_valid(NULL, VM_NAME_MAX));
        assert_false(vm_name_is_valid("a b", VM_NAME_MAX));
        assert_false(vm_name_is_valid("é", VM_NAME_MAX));
        assert_true(vm_name_is_valid("abc", 3));
        assert_false(vm_name_is_valid("abcd", 3));
        assert_string_equal(vm_state_to_string(VM_STATE_SHUTOFF), "shutoff");
        assert_string_equal(vm_state_to_string((VmState) 99), "invalid");
        assert_int_equal(vm_accel_from_string("kvm"), VM_ACCEL_KVM);
        assert_int_equal(vm_accel_from_string("KVM"), -EINVAL);
        assert_int_equal(vm_accel_from_string(NULL), -EINVAL);
}

/* --- metadata --- */

static void test_metadata_round_trip(void **state) {
        _cleanup_free_ char *xml = NULL, *id = NULL;
        assert_int_equal(vm_xml_build(&kvm_spec, VM_ACCEL_KVM, &xml, NULL), 0);
        assert_int_equal(vm_xml_container_id(xml, &id), 0);
        assert_string_equal(id, "c2");
}

/* A warm-pool domain: marked as the pool's, never as a container's, with
 * spare root ports for hot-plug; a hot-plugged disk alone as add_disk()
 * writes it. */
static void test_pool_domain(void **state) {
        VmSpec spec = kvm_spec;
        spec.pool_key = "t0123456789abcdef";
        _cleanup_free_ char *xml = NULL, *id = NULL, *key = NULL, *disk = NULL;
        assert_int_equal(vm_xml_build(&spec, VM_ACCEL_KVM, &xml, NULL), 0);
        assert_int_equal(vm_xml_container_id(xml, &id), -ENOENT);
        assert_int_equal(vm_xml_pool_key(xml, &key), 0);
        assert_string_equal(key, "t0123456789abcdef");
        size_t ports = 0;
        for (const char *p = xml; (p = strstr(p, "model=\"pcie-root-port\"")); p++)
                ports++;
        assert_int_equal(ports, VM_POOL_HOTPLUG_PORTS + VM_XML_BUILTIN_PCI);
        assert_non_null(strstr(xml, "<controller type=\"pci\" model=\"pcie-root\" index=\"0\"/>"));
        _cleanup_free_ char *plain = NULL, *nokey = NULL;
        assert_int_equal(vm_xml_build(&kvm_spec, VM_ACCEL_KVM, &plain, NULL), 0);
        assert_int_equal(vm_xml_pool_key(plain, &nokey), -ENOENT);
        assert_null(strstr(plain, "pcie-root-port"));
        spec.pool_key = "bad key";
        assert_int_equal(vm_xml_build(&spec, VM_ACCEL_KVM, &xml, NULL), -EINVAL);

        VmDisk d = {.path = "/var/lib/pl/c/disk.qcow2", .format = VM_DISK_QCOW2, .serial = "pl-root"};
        assert_int_equal(vm_xml_disk(&d, 0, &disk, NULL), 0);
        assert_string_equal(disk, "<disk type=\"file\" device=\"disk\">\n"
                                  "  <driver name=\"qemu\" type=\"qcow2\"/>\n"
                                  "  <source file=\"/var/lib/pl/c/disk.qcow2\"/>\n"
                                  "  <target dev=\"vda\" bus=\"virtio\"/>\n"
                                  "  <serial>pl-root</serial>\n"
                                  "</disk>\n");
        VmDisk bad = {.path = "relative", .serial = "pl-root"};
        char *none = NULL;
        assert_int_equal(vm_xml_disk(&bad, 0, &none, NULL), -EINVAL);
        assert_int_equal(vm_xml_disk(&d, VM_DISKS_MAX, &none, NULL), -EINVAL);
        assert_null(none);
}

/* As libvirt gives it back: reformatted, other metadata beside ours, our
 * namespace under another prefix or as the default namespace. */
static void test_metadata_libvirt_forms(void **state) {
        static const char *const forms[] = {
                ("<domain type='qemu' id='3'>\n  <name>pl-a</name>\n  <metadata>\n"
                 "    <other:x xmlns:other=\"https://example.org/x\">y</other:x>\n"
                 "    <pl:container xmlns:pl=\"https://portlayer.dev/xmlns/vm/1\" id=\"abc\"/>\n"
                 "  </metadata>\n</domain>\n"),
                ("<domain><metadata><q:container xmlns:q='https://portlayer.dev/xmlns/vm/1' id='abc'/>"
                 "</metadata></domain>"),
                ("<domain><metadata><container xmlns='https://portlayer.dev/xmlns/vm/1' id='abc'></container>"
                 "</metadata></domain>"),
        };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_free_ char *id = NULL;
                assert_int_equal(vm_xml_container_id(forms[i], &id), 0);
                assert_string_equal(id, "abc");
        }
}

static void test_metadata_not_ours(void **state) {
        static const char *const foreign[] = {
                "<domain type='kvm'><name>someone-else</name></domain>",
                "<domain><metadata/></domain>",
                ("<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/2' id='a'/>"
                 "</metadata></domain>"),
                "<domain><metadata><container id='a'/></metadata></domain>",
                "<domain><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='a'/></domain>",
                "<pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='a'/>",
                ("<network><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='a'/>"
                 "</metadata></network>"),
        };
        for (size_t i = 0; i < ELEMENTSOF(foreign); i++) {
                char *id = NULL;
                if (vm_xml_container_id(foreign[i], &id) != -ENOENT)
                        fail_msg("case %zu: not -ENOENT", i);
                assert_null(id);
        }
}

static void test_metadata_hostile(void **state) {
        char *id = NULL;
        const char *head = "<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='";
        const char *tail = "'/></metadata></domain>";

        /* A huge id: parsed, then refused as a name. */
        size_t huge = 100000;
        _cleanup_free_ char *big = malloc(strlen(head) + huge + strlen(tail) + 1);
        assert_non_null(big);
        strcpy(big, head);
        memset(big + strlen(head), 'a', huge);
        strcpy(big + strlen(head) + huge, tail);
        assert_int_equal(vm_xml_container_id(big, &id), -EINVAL);

        static const char *const damaged[] = {
                ("<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='../etc'/>"
                 "</metadata></domain>"),
                "<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1'/></metadata></domain>",
                ("<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id=''/>"
                 "</metadata></domain>"),
                ("<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='a'/>"
                 "<pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='b'/></metadata></domain>"),
                ("<domain><metadata><pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='a&#10;b'/>"
                 "</metadata></domain>"),
        };
        for (size_t i = 0; i < ELEMENTSOF(damaged); i++)
                if (vm_xml_container_id(damaged[i], &id) != -EINVAL)
                        fail_msg("damaged case %zu: not -EINVAL", i);

        static const char *const unreadable[] = {
                "",
                "not xml at all",
                "<domain><metadata>",
                ("<!DOCTYPE domain [<!ENTITY x 'abc'>]><domain><metadata>"
                 "<pl:container xmlns:pl='https://portlayer.dev/xmlns/vm/1' id='&x;'/></metadata></domain>"),
                "<!DOCTYPE d SYSTEM 'http://127.0.0.1:1/x.dtd'><domain/>",
        };
        for (size_t i = 0; i < ELEMENTSOF(unreadable); i++)
                if (vm_xml_container_id(unreadable[i], &id) != -EBADMSG)
                        fail_msg("unreadable case %zu: not -EBADMSG", i);
        assert_int_equal(vm_xml_container_id(NULL, &id), -EINVAL);
        assert_null(id);
}

static void test_metadata_size_bound(void **state) {
        size_t n = VM_XML_INPUT_MAX + 1;
        _cleanup_free_ char *xml = malloc(n + 1);
        char *id = NULL;
        assert_non_null(xml);
        memset(xml, ' ', n);
        xml[n] = '\0';
        memcpy(xml, "<domain>", 8);
        assert_int_equal(vm_xml_container_id(xml, &id), -E2BIG);
        assert_null(id);
}

/* The CID libvirt picked, read back from a live domain XML; anything that is
 * not a guest CID is refused. */
static void test_vsock_cid(void **state) {
        unsigned cid = 0;
        assert_int_equal(vm_xml_vsock_cid("<domain><devices><disk/><vsock model='virtio'><cid auto='yes' address='42'/>"
                                          "</vsock></devices></domain>", &cid),
                         0);
        assert_int_equal(cid, 42);
        assert_int_equal(vm_xml_vsock_cid("<domain><devices><vsock model='virtio'><cid auto='yes'/></vsock></devices>"
                                          "</domain>", &cid),
                         -ENOENT);
        assert_int_equal(vm_xml_vsock_cid("<domain><devices/></domain>", &cid), -ENOENT);
        const char *bad[] = {"0", "2", "-1", "4294967295", "12x", ""};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char xml[256];
                snprintf(xml, sizeof xml, "<domain><devices><vsock><cid address='%s'/></vsock></devices></domain>", bad[i]);
                if (vm_xml_vsock_cid(xml, &cid) != -EINVAL)
                        fail_msg("CID '%s' accepted", bad[i]);
        }
        assert_int_equal(vm_xml_vsock_cid("<!DOCTYPE x [<!ENTITY a 'b'>]><domain/>", &cid), -EBADMSG);
        /* built by us with vsock, read back: no address until libvirt gives one */
        VmDisk disk = {.path = "/d.qcow2", .format = VM_DISK_QCOW2, .serial = "pl-root"};
        VmSpec spec = {.name = "v", .container_id = "c", .memory_mib = 256, .vcpus = 1, .kernel = "/k",
                       .disks = &disk, .n_disks = 1, .console_log = "/c.log", .vsock = true};
        _cleanup_free_ char *xml = NULL;
        Error *e = NULL;
        if (vm_xml_build(&spec, VM_ACCEL_TCG, &xml, &e) < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(vm_xml_vsock_cid(xml, &cid), -ENOENT);
}

static void test_vsock_usable(void **state) {
        assert_false(vm_vsock_usable("/nonexistent/vhost-vsock"));
        char path[] = "/tmp/pl-vsock-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_true(vm_vsock_usable(path));
        assert_int_equal(chmod(path, 0), 0);
        if (geteuid() != 0) /* root opens it anyway */
                assert_false(vm_vsock_usable(path));
        unlink(path);
}

int main(void) {
        /* The read-only virtio-fs wrapper at a fixed place, for the golden files. */
        setenv("PL_VIRTIOFSD_RO", "/usr/lib/portlayer/pl-virtiofsd-ro", 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_tcg),
                cmocka_unit_test(test_golden_kvm_vsock_readonly),
                cmocka_unit_test(test_golden_nics_filesystems),
                cmocka_unit_test(test_memory_backing_only_with_filesystems),
                cmocka_unit_test(test_validation_nic_rules),
                cmocka_unit_test(test_forward_validation),
                cmocka_unit_test(test_user_netdev),
                cmocka_unit_test(test_build_is_deterministic),
                cmocka_unit_test(test_build_needs_resolved_accel),
                cmocka_unit_test(test_validation_errors),
                cmocka_unit_test(test_validation_disk_rules),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_metadata_round_trip),
                cmocka_unit_test(test_metadata_libvirt_forms),
                cmocka_unit_test(test_metadata_not_ours),
                cmocka_unit_test(test_pool_domain),
                cmocka_unit_test(test_metadata_hostile),
                cmocka_unit_test(test_metadata_size_bound),
                cmocka_unit_test(test_vsock_cid),
                cmocka_unit_test(test_vsock_usable),
        };
        return test_run_group(tests, NULL, NULL);
}
