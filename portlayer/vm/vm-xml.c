/* vm-xml.c: the domain XML of a VM, with libxml2's tree API (see vm-xml.h).
 *
 * The domain is a direct-kernel-boot q35 machine with only what a container
 * needs: virtio-blk disks found by serial, the kernel console on the first
 * serial port written to a file, a virtio-serial port for the agent bound to
 * a Unix socket QEMU listens on, a virtio RNG so the guest has entropy at
 * boot, optionally virtio-vsock; no USB, balloon, graphics or sound. Power-off,
 * reboot and crash all end the VM (on_* = destroy): a guest that panics with
 * panic=-1 reboots, and the host sees the VM stop at once instead of booting
 * it again. ACPI stays on because it is how the guest kernel powers off.
 *
 * Text goes through xmlNewTextChild() and xmlNewProp(), which escape it when
 * the document is saved (xmlNewChild() would not: it parses entities in its
 * content). A failed libxml2 allocation marks the builder failed and every
 * later step is a no-op, so the code reads straight through. */
#include "vm-xml-internal.h"

#include <inttypes.h>
#include <limits.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

typedef struct Builder {
        bool failed;
} Builder;

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void) {
        xmlInitParser();
}

static inline void xml_doc_freep(xmlDocPtr *doc) {
        if (*doc)
                xmlFreeDoc(*doc);
}

static xmlNodePtr child(Builder *b, xmlNodePtr parent, const char *name, const char *text) {
        xmlNodePtr node = NULL;
        if (parent)
                node = xmlNewTextChild(parent, NULL, BAD_CAST name, text ? BAD_CAST text : NULL);
        if (!node)
                b->failed = true;
        return node;
}

static void prop(Builder *b, xmlNodePtr node, const char *name, const char *value) {
        if (!node || !xmlNewProp(node, BAD_CAST name, BAD_CAST value))
                b->failed = true;
}

/* An element with up to two attributes and no content: <name a="x" b="y"/>. */
static xmlNodePtr empty(Builder *b, xmlNodePtr parent, const char *name, const char *a, const char *av,
                        const char *c, const char *cv) {
        xmlNodePtr node = child(b, parent, name, NULL);
        if (a)
                prop(b, node, a, av);
        if (c)
                prop(b, node, c, cv);
        return node;
}

static void add_metadata(Builder *b, xmlNodePtr domain, const VmSpec *spec) {
        xmlNodePtr metadata = child(b, domain, "metadata", NULL);
        /* A warm-pool VM is marked differently, so that it is never taken
         * for a container's (vm_xml_container_id() does not see it). */
        xmlNodePtr container = child(b, metadata, spec->pool_key ? VM_XML_POOL_ELEMENT : VM_XML_METADATA_ELEMENT, NULL);
        if (!container)
                return;
        xmlNsPtr ns = xmlNewNs(container, BAD_CAST VM_XML_NAMESPACE, BAD_CAST VM_XML_PREFIX);
        if (!ns) {
                b->failed = true;
                return;
        }
        xmlSetNs(container, ns);
        if (spec->pool_key)
                prop(b, container, "key", spec->pool_key);
        else
                prop(b, container, "id", spec->container_id);
}

static void add_head(Builder *b, xmlNodePtr domain, const VmSpec *spec) {
        char number[32];

        child(b, domain, "name", spec->name);
        if (spec->uuid)
                child(b, domain, "uuid", spec->uuid);
        /* A VM generation ID (QEMU's vmgenid, ACPI): libvirt picks it at
         * define time. A kernel with the driver reseeds its RNG when it
         * changes; ours (kernel-config/) has it, Debian's cloud kernel not. */
        child(b, domain, "genid", NULL);
        add_metadata(b, domain, spec);
        snprintf(number, sizeof number, "%" PRIu64, spec->memory_mib);
        prop(b, child(b, domain, "memory", number), "unit", "MiB");
        snprintf(number, sizeof number, "%u", spec->vcpus);
        child(b, domain, "vcpu", number);
}

/* virtio-fs maps guest pages into virtiofsd: the guest's RAM must be
 * shareable memory, not QEMU's private anonymous memory. nosharepages keeps
 * the RAM from KSM (QEMU's mem-merge=off); libvirt's schema wants it before
 * source and access. */
static void add_memory_backing(Builder *b, xmlNodePtr domain, const VmSpec *spec) {
        if (spec->n_filesystems == 0 && !spec->no_share_pages)
                return;
        xmlNodePtr backing = child(b, domain, "memoryBacking", NULL);
        if (spec->no_share_pages)
                child(b, backing, "nosharepages", NULL);
        if (spec->n_filesystems == 0)
                return;
        empty(b, backing, "source", "type", "memfd", NULL, NULL);
        empty(b, backing, "access", "mode", "shared", NULL, NULL);
}

static void add_os(Builder *b, xmlNodePtr domain, const VmSpec *spec, VmAccel accel) {
        xmlNodePtr os = child(b, domain, "os", NULL);
        xmlNodePtr type = child(b, os, "type", "hvm");
        prop(b, type, "arch", "x86_64");
        prop(b, type, "machine", "q35");
        child(b, os, "kernel", spec->kernel);
        if (spec->initrd)
                child(b, os, "initrd", spec->initrd);
        if (spec->cmdline)
                child(b, os, "cmdline", spec->cmdline);

        xmlNodePtr features = child(b, domain, "features", NULL);
        child(b, features, "acpi", NULL);
        if (accel == VM_ACCEL_TCG && spec->tb_cache_mib > 0) {
                char mib[16];
                snprintf(mib, sizeof mib, "%u", spec->tb_cache_mib);
                prop(b, child(b, child(b, features, "tcg", NULL), "tb-cache", mib), "unit", "MiB");
        }
        /* TCG: every feature QEMU can emulate, so binaries built for newer
         * ISA levels (x86-64-v2/v3) run; KVM: the host CPU as is. */
        empty(b, domain, "cpu", "mode", accel == VM_ACCEL_KVM ? "host-passthrough" : "maximum", NULL, NULL);

        child(b, domain, "on_poweroff", "destroy");
        child(b, domain, "on_reboot", "destroy");
        child(b, domain, "on_crash", "destroy");
}

static void add_disk(Builder *b, xmlNodePtr devices, const VmDisk *disk, size_t index) {
        char dev[8];
        snprintf(dev, sizeof dev, "vd%c", (char) ('a' + index)); /* index < VM_DISKS_MAX */

        xmlNodePtr node = empty(b, devices, "disk", "type", "file", "device", "disk");
        empty(b, node, "driver", "name", "qemu", "type", vm_disk_format_to_string(disk->format));
        empty(b, node, "source", "file", disk->path, NULL, NULL);
        empty(b, node, "target", "dev", dev, "bus", "virtio");
        child(b, node, "serial", disk->serial);
        if (disk->read_only)
                child(b, node, "readonly", NULL);
}

/* libvirt starts one virtiofsd per filesystem with the domain and stops it
 * with the domain. The binary is the C virtiofsd Debian 12's QEMU ships
 * (libvirt would otherwise look for a vhost-user description in
 * /usr/share/qemu/vhost-user, which that package does not install). */
int vm_xml_virtiofsd_ro(char *buf, size_t size) {
        const char *env = getenv("PL_VIRTIOFSD_RO");
        if (env && env[0]) {
                int n = snprintf(buf, size, "%s", env);
                return n > 0 && (size_t) n < size && env[0] == '/' ? 0 : -EINVAL;
        }
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
                return -errno;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        n = snprintf(buf, size, "%s/%s", self, VM_XML_VIRTIOFSD_RO_NAME);
        return n > 0 && (size_t) n < size ? 0 : -ENAMETOOLONG;
}

/* A read-only share gets our wrapper as its binary: libvirt 9.0 refuses
 * <readonly/> for virtio-fs, and a guest's own ro mount protects nothing. */
static void add_filesystem(Builder *b, xmlNodePtr devices, const VmFilesystem *fs, const char *ro_binary) {
        xmlNodePtr node = empty(b, devices, "filesystem", "type", "mount", "accessmode", "passthrough");
        empty(b, node, "driver", "type", "virtiofs", NULL, NULL);
        empty(b, node, "binary", "path", fs->read_only ? ro_binary : VM_XML_VIRTIOFSD, NULL, NULL);
        empty(b, node, "source", "dir", fs->source, NULL, NULL);
        empty(b, node, "target", "dir", fs->tag, NULL, NULL);
}

/* A virtio-net NIC: a tap libvirt creates and enslaves to the bridge, or
 * QEMU's built-in user-mode stack (slirp). */
static void add_interface(Builder *b, xmlNodePtr devices, const VmNic *nic) {
        char mtu[16];
        xmlNodePtr node = empty(b, devices, "interface", "type", nic->type == VM_NIC_USER ? "user" : "bridge",
                                NULL, NULL);
        empty(b, node, "mac", "address", nic->mac, NULL, NULL);
        if (nic->type == VM_NIC_BRIDGE) {
                empty(b, node, "source", "bridge", nic->bridge, NULL, NULL);
                if (nic->tap)
                        empty(b, node, "target", "dev", nic->tap, NULL, NULL);
        }
        empty(b, node, "model", "type", "virtio", NULL, NULL);
        if (nic->mtu) {
                snprintf(mtu, sizeof mtu, "%u", nic->mtu);
                empty(b, node, "mtu", "size", mtu, NULL, NULL);
        }
}

static void add_console(Builder *b, xmlNodePtr devices, const VmSpec *spec) {
        xmlNodePtr serial = empty(b, devices, "serial", "type", "file", NULL, NULL);
        empty(b, serial, "source", "path", spec->console_log, NULL, NULL);
        empty(b, serial, "target", "port", "0", NULL, NULL);

        xmlNodePtr console = empty(b, devices, "console", "type", "file", NULL, NULL);
        empty(b, console, "source", "path", spec->console_log, NULL, NULL);
        empty(b, console, "target", "type", "serial", "port", "0");
}

static void add_channels(Builder *b, xmlNodePtr devices, const VmSpec *spec) {
        if (spec->agent_socket) {
                xmlNodePtr channel = empty(b, devices, "channel", "type", "unix", NULL, NULL);
                empty(b, channel, "source", "mode", "bind", "path", spec->agent_socket);
                empty(b, channel, "target", "type", "virtio", "name",
                      spec->agent_channel ? spec->agent_channel : VM_AGENT_CHANNEL_DEFAULT);
        }
        if (spec->vsock) {
                xmlNodePtr vsock = empty(b, devices, "vsock", "model", "virtio", NULL, NULL);
                empty(b, vsock, "cid", "auto", "yes", NULL, NULL);
        }
}

static void add_devices(Builder *b, xmlNodePtr domain, const VmSpec *spec, const char *ro_binary) {
        xmlNodePtr devices = child(b, domain, "devices", NULL);
        for (size_t i = 0; i < spec->n_disks; i++)
                add_disk(b, devices, &spec->disks[i], i);
        for (size_t i = 0; i < spec->n_filesystems; i++)
                add_filesystem(b, devices, &spec->filesystems[i], ro_binary);
        for (size_t i = 0; i < spec->n_nics; i++)
                add_interface(b, devices, &spec->nics[i]);
        empty(b, devices, "controller", "type", "usb", "model", "none");
        /* q35 has no hot-pluggable PCIe slot of its own: libvirt gives each
         * device at define time a root port, so a pool VM gets spare ones
         * for what is attached after it resumes. */
        if (spec->pool_key) {
                xmlNodePtr root = empty(b, devices, "controller", "type", "pci", "model", "pcie-root");
                prop(b, root, "index", "0");
        }
        for (unsigned i = 0; spec->pool_key && i < VM_POOL_HOTPLUG_PORTS + VM_XML_BUILTIN_PCI; i++)
                empty(b, devices, "controller", "type", "pci", "model", "pcie-root-port");
        add_console(b, devices, spec);
        add_channels(b, devices, spec);

        xmlNodePtr rng = empty(b, devices, "rng", "model", "virtio", NULL, NULL);
        prop(b, child(b, rng, "backend", "/dev/urandom"), "model", "random");
        /* Free page reporting only: the guest hands pages it freed back
         * (QEMU drops them), nobody inflates anything. */
        xmlNodePtr balloon = empty(b, devices, "memballoon", "model", spec->free_page_reporting ? "virtio" : "none",
                                   NULL, NULL);
        if (spec->free_page_reporting)
                prop(b, balloon, "freePageReporting", "on");
}

/* The QEMU process's identity: <seclabel type='static' model='dac'
 * relabel='no'><label>+uid:+gid</label></seclabel>. "+" makes libvirt take
 * the numbers as ids, not names to look up. relabel='no': libvirt's dynamic
 * ownership would chown every disk and the kernel to the VM's uid at start
 * and back to root at stop, shared inputs included; the container host
 * gives exactly the VM's own files to its uid instead (docs/security.md). */
static void add_seclabel(Builder *b, xmlNodePtr domain, const VmSpec *spec) {
        char label[32];
        if (!spec->owner)
                return;
        snprintf(label, sizeof label, "+%" PRIu32 ":+%" PRIu32, spec->owner->uid, spec->owner->gid);
        xmlNodePtr seclabel = empty(b, domain, "seclabel", "type", "static", "model", "dac");
        prop(b, seclabel, "relabel", "no");
        child(b, seclabel, "label", label);
}

/* libxml2 writes whatever bytes it is given; libvirt would then reject the
 * document with a parser error far from the cause. */
static int check_utf8(const VmSpec *spec, Error **err) {
        const char *fields[] = { spec->kernel, spec->initrd, spec->cmdline, spec->console_log, spec->agent_socket };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (fields[i] && !xmlCheckUTF8(BAD_CAST fields[i]))
                        return error_set(err, EINVAL, "invalid VM spec: '%s' is not valid UTF-8", fields[i]);
        for (size_t i = 0; i < spec->n_disks; i++)
                if (!xmlCheckUTF8(BAD_CAST spec->disks[i].path))
                        return error_set(err, EINVAL, "invalid VM spec: disks[%zu].path is not valid UTF-8", i);
        for (size_t i = 0; i < spec->n_filesystems; i++)
                if (!xmlCheckUTF8(BAD_CAST spec->filesystems[i].source))
                        return error_set(err, EINVAL, "invalid VM spec: filesystems[%zu].source is not valid UTF-8",
                                         i);
        return 0;
}

static int serialize(xmlDocPtr doc, char **ret_xml) {
        xmlBufferPtr buf = xmlBufferCreate();
        if (!buf)
                return -ENOMEM;
        int r = -ENOMEM;
        xmlSaveCtxtPtr save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
        if (save) {
                long written = xmlSaveDoc(save, doc);
                xmlSaveClose(save);
                if (written >= 0 && (*ret_xml = strdup((const char *) xmlBufferContent(buf))))
                        r = 0;
        }
        xmlBufferFree(buf);
        return r;
}

int vm_xml_build(const VmSpec *spec, VmAccel accel, char **ret_xml, Error **err) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        Builder b = { .failed = false };

        int r = vm_spec_validate(spec, err);
        if (r < 0)
                return r;
        if (accel != VM_ACCEL_KVM && accel != VM_ACCEL_TCG)
                return error_set(err, EINVAL, "domain XML needs a resolved accelerator, not '%s'",
                                 vm_accel_to_string(accel));
        pthread_once(&xml_once, xml_init);
        if ((r = check_utf8(spec, err)) < 0)
                return r;

        char ro_binary[PATH_MAX] = "";
        for (size_t i = 0; i < spec->n_filesystems; i++)
                if (spec->filesystems[i].read_only && (r = vm_xml_virtiofsd_ro(ro_binary, sizeof ro_binary)) < 0)
                        return error_set(err, -r, "filesystems[%zu]: cannot locate %s (PL_VIRTIOFSD_RO)", i,
                                         VM_XML_VIRTIOFSD_RO_NAME);

        doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNodePtr domain = doc ? xmlNewDocNode(doc, NULL, BAD_CAST "domain", NULL) : NULL;
        if (!domain)
                return error_oom(err);
        xmlDocSetRootElement(doc, domain);
        prop(&b, domain, "type", accel == VM_ACCEL_KVM ? "kvm" : "qemu");
        add_head(&b, domain, spec);
        add_memory_backing(&b, domain, spec);
        add_os(&b, domain, spec, accel);
        add_devices(&b, domain, spec, ro_binary);
        add_seclabel(&b, domain, spec);
        if (b.failed || serialize(doc, ret_xml) < 0)
                return error_oom(err);
        return 0;
}

/* One device element alone, built by add (disk or nic) into a scratch
 * <devices>, for a live attach. */
static int device_alone(void (*add)(Builder *, xmlNodePtr, const void *, size_t), const void *dev, size_t index,
                        char **ret_xml, Error **err) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        Builder b = { .failed = false };
        pthread_once(&xml_once, xml_init);
        doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNodePtr devices = doc ? xmlNewDocNode(doc, NULL, BAD_CAST "devices", NULL) : NULL;
        if (!devices)
                return error_oom(err);
        xmlDocSetRootElement(doc, devices);
        add(&b, devices, dev, index);
        xmlNodePtr node = devices->children;
        if (b.failed || !node)
                return error_oom(err);
        xmlUnlinkNode(node);
        xmlFreeNode(xmlDocSetRootElement(doc, node));
        if (serialize(doc, ret_xml) < 0)
                return error_oom(err);
        return 0;
}

static void add_disk_alone(Builder *b, xmlNodePtr devices, const void *dev, size_t index) {
        add_disk(b, devices, dev, index);
}

static void add_interface_alone(Builder *b, xmlNodePtr devices, const void *dev, size_t index) {
        (void) index;
        add_interface(b, devices, dev);
}

int vm_xml_interface(const VmNic *nic, char **ret_xml, Error **err) {
        int r = vm_nic_validate(nic, 0, err);
        if (r < 0)
                return r;
        return device_alone(add_interface_alone, nic, 0, ret_xml, err);
}

int vm_xml_disk(const VmDisk *disk, size_t index, char **ret_xml, Error **err) {
        if (index >= VM_DISKS_MAX || !disk->path || disk->path[0] != '/' || !xmlCheckUTF8(BAD_CAST disk->path) ||
            !disk->serial || !vm_name_is_valid(disk->serial, VM_DISK_SERIAL_MAX) || disk->format >= _VM_DISK_FORMAT_MAX)
                return error_set(err, EINVAL, "disk %zu: needs an absolute UTF-8 path, a serial of [A-Za-z0-9_.-]{1,%d} "
                                 "and an index below %d", index, VM_DISK_SERIAL_MAX, VM_DISKS_MAX);
        return device_alone(add_disk_alone, disk, index, ret_xml, err);
}

/* --- reading our metadata back --- */

static bool is_element(xmlNodePtr node, const char *name, const char *ns_href) {
        if (!node || node->type != XML_ELEMENT_NODE || !xmlStrEqual(node->name, BAD_CAST name))
                return false;
        if (!ns_href)
                return !node->ns;
        return node->ns && xmlStrEqual(node->ns->href, BAD_CAST ns_href);
}

/* Our element called name among the children of <domain><metadata>.
 * -ENOENT when absent, -EINVAL when there are two. */
static int find_ours(xmlDocPtr doc, const char *name, xmlNodePtr *ret) {
        xmlNodePtr root = xmlDocGetRootElement(doc), found = NULL;
        if (!is_element(root, "domain", NULL))
                return -ENOENT;
        for (xmlNodePtr m = root->children; m; m = m->next) {
                if (!is_element(m, "metadata", NULL))
                        continue;
                for (xmlNodePtr c = m->children; c; c = c->next) {
                        if (!is_element(c, name, VM_XML_NAMESPACE))
                                continue;
                        if (found)
                                return -EINVAL;
                        found = c;
                }
        }
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

/* Parses a domain XML read back from libvirt, bounded and without DTDs. */
static int parse_domain(const char *domain_xml, xmlDocPtr *ret) {
        if (!domain_xml)
                return -EINVAL;
        size_t len = strnlen(domain_xml, VM_XML_INPUT_MAX + 1);
        if (len > VM_XML_INPUT_MAX)
                return -E2BIG;
        /* libvirt never writes a DTD; one here can only be an entity trick. */
        if (memmem(domain_xml, len, "<!DOCTYPE", 9) || memmem(domain_xml, len, "<!ENTITY", 8))
                return -EBADMSG;
        pthread_once(&xml_once, xml_init);
        *ret = xmlReadMemory(domain_xml, (int) len, "domain.xml", NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        return *ret ? 0 : -EBADMSG;
}

/* parse_domain() and its root element, which must be <domain>: -EINVAL
 * otherwise. */
static int parse_domain_root(const char *domain_xml, xmlDocPtr *ret, xmlNodePtr *ret_root) {
        int r = parse_domain(domain_xml, ret);
        if (r < 0)
                return r;
        xmlNodePtr root = xmlDocGetRootElement(*ret);
        if (!is_element(root, "domain", NULL))
                return -EINVAL;
        *ret_root = root;
        return 0;
}

/* The attribute attr of our element called name, checked as a name. */
static int ours_attr(const char *domain_xml, const char *name, const char *attr, char **ret) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        xmlNodePtr node = NULL;
        int r = parse_domain(domain_xml, &doc);
        if (r < 0)
                return r;
        r = find_ours(doc, name, &node);
        if (r < 0)
                return r;

        xmlChar *v = xmlGetNoNsProp(node, BAD_CAST attr);
        bool valid = v && vm_name_is_valid((const char *) v, VM_NAME_MAX);
        char *copy = valid ? strdup((const char *) v) : NULL;
        xmlFree(v);
        if (!valid)
                return -EINVAL;
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int vm_xml_container_id(const char *domain_xml, char **ret_id) {
        return ours_attr(domain_xml, VM_XML_METADATA_ELEMENT, "id", ret_id);
}

int vm_xml_pool_key(const char *domain_xml, char **ret_key) {
        return ours_attr(domain_xml, VM_XML_POOL_ELEMENT, "key", ret_key);
}

static xmlNodePtr child_element(xmlNodePtr parent, const char *name) {
        for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
                if (is_element(c, name, NULL))
                        return c;
        return NULL;
}

int vm_xml_vsock_cid(const char *domain_xml, unsigned *ret_cid) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        xmlNodePtr root = NULL;
        int r = parse_domain_root(domain_xml, &doc, &root);
        if (r < 0)
                return r;
        xmlNodePtr cid = child_element(child_element(child_element(root, "devices"), "vsock"), "cid");
        if (!cid)
                return -ENOENT;
        xmlChar *addr = xmlGetNoNsProp(cid, BAD_CAST "address");
        if (!addr)
                return -ENOENT;
        char *end = NULL;
        unsigned long v = strtoul((const char *) addr, &end, 10);
        bool ok = end != (char *) addr && !*end && v >= 3 && v < 0xffffffffUL;
        xmlFree(addr);
        if (!ok) /* 0-2 are the hypervisor, local and host; -1 is "any" */
                return -EINVAL;
        *ret_cid = (unsigned) v;
        return 0;
}

int vm_xml_user_netdev(const char *domain_xml, char **ret_id) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        xmlNodePtr root = NULL;
        int r = parse_domain_root(domain_xml, &doc, &root);
        if (r < 0)
                return r;
        xmlNodePtr devices = child_element(root, "devices");
        for (xmlNodePtr c = devices ? devices->children : NULL; c; c = c->next) {
                if (!is_element(c, "interface", NULL))
                        continue;
                xmlChar *type = xmlGetNoNsProp(c, BAD_CAST "type");
                bool user = type && xmlStrEqual(type, BAD_CAST "user");
                xmlFree(type);
                if (!user)
                        continue;
                xmlChar *alias = xmlGetNoNsProp(child_element(c, "alias"), BAD_CAST "name");
                if (!alias)
                        return -ENOENT;
                /* It goes into a monitor command line: a plain name only. */
                bool valid = vm_name_is_valid((const char *) alias, VM_NAME_MAX);
                char *id = NULL;
                if (valid && asprintf(&id, "host%s", (const char *) alias) < 0)
                        id = NULL;
                xmlFree(alias);
                if (!valid)
                        return -EINVAL;
                if (!id)
                        return -ENOMEM;
                *ret_id = id;
                return 0;
        }
        return -ENOENT;
}
