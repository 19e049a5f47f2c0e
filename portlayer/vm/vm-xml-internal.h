/* vm-xml.h: libvirt domain XML for our VMs, built and read with libxml2.
 *
 * vm-xml.c is the only file that includes libxml2. It writes the domain from
 * a VmSpec (the tree API escapes every value, nothing is pasted into a
 * string) and reads back the one thing we store in a domain: the metadata
 * element that marks it as ours and names its container,
 *
 *   <metadata>
 *     <pl:container xmlns:pl="https://portlayer.dev/xmlns/vm/1" id="..."/>
 *   </metadata>
 *
 * Text read back comes from libvirt, which anyone with access to the
 * connection can write, so the reader bounds the input and checks the id. */
#pragma once

#include "portlayer/vm/vm-driver.h"

#define VM_XML_NAMESPACE "https://portlayer.dev/xmlns/vm/1"
#define VM_XML_PREFIX "pl"
#define VM_XML_METADATA_ELEMENT "container"
/* PCIe devices every domain has (virtio-serial, virtio-rng, vsock, one spare):
 * libvirt puts them on the root ports listed, ahead of any hotplug. */
#define VM_XML_BUILTIN_PCI 4
#define VM_XML_POOL_ELEMENT "pool" /* a warm-pool VM: <pl:pool key="..."/>, never a container's */
#define VM_XML_VIRTIOFSD "/usr/lib/qemu/virtiofsd" /* the C virtiofsd of Debian 12's qemu-system-common */
#define VM_XML_VIRTIOFSD_RO_NAME "pl-virtiofsd-ro" /* portlayer/tools/pl-virtiofsd-ro.c */
#define VM_XML_INPUT_MAX (4u * 1024u * 1024u) /* a real domain is a few KiB */

/* Validates spec and writes the domain XML (no XML declaration, two-space
 * indent, trailing newline) for accel, which must be VM_ACCEL_KVM ("kvm"
 * domain, host-passthrough CPU) or VM_ACCEL_TCG ("qemu" domain, maximum CPU
 * model). The output is deterministic: equal specs (and an equal
 * vm_xml_virtiofsd_ro() for read-only filesystems) give equal bytes. */
int vm_xml_build(const VmSpec *spec, VmAccel accel, char **ret_xml, Error **err);

/* Extracts our container id from a whole domain XML (virDomainGetXMLDesc();
 * virDomainGetMetadata() is no help: it returns the element stripped of its
 * namespace). Returns 0 and a strdup'ed id; -ENOENT when the domain carries no element in our namespace
 * (not ours); -EINVAL when the XML does not parse, has a DTD, holds the
 * element twice or the id is not a valid name; -E2BIG past VM_XML_INPUT_MAX. */
int vm_xml_container_id(const char *domain_xml, char **ret_id);

/* The key of a warm-pool domain (<pl:pool key="..."/>), as
 * vm_xml_container_id() reads a container's id; -ENOENT when the domain is
 * not a pool VM. */
int vm_xml_pool_key(const char *domain_xml, char **ret_key);

/* One <disk> element alone, as add_disk() writes it into a domain (target
 * vd<a + index>), for a live attach. -EINVAL for a bad disk. */
int vm_xml_disk(const VmDisk *disk, size_t index, char **ret_xml, Error **err);
/* One <interface> element alone, as the domain XML has it; -EINVAL for a
 * bad NIC. */
int vm_xml_interface(const VmNic *nic, char **ret_xml, Error **err);

/* The guest CID libvirt gave the domain's vsock device, from the live
 * domain XML (<devices><vsock><cid address="N"/>). Returns 0; -ENOENT when
 * the domain has no vsock device or no address yet; -EINVAL/-EBADMSG/-E2BIG
 * as vm_xml_container_id(). */
int vm_xml_vsock_cid(const char *domain_xml, unsigned *ret_cid);

/* The QEMU netdev id of the domain's user-mode NIC, from the live domain
 * XML: "host" + the <alias name> libvirt gave the <interface type='user'>
 * ("hostnet0"), which is what QEMU's hostfwd_add wants. Returns 0 and a
 * strdup'ed id; -ENOENT when the domain has no user-mode NIC (or no alias
 * yet); -EINVAL/-EBADMSG/-E2BIG as vm_xml_container_id(). */
int vm_xml_user_netdev(const char *domain_xml, char **ret_id);

/* Where the read-only virtio-fs wrapper is: $PL_VIRTIOFSD_RO (absolute),
 * else pl-virtiofsd-ro beside this program (the daemon, the tools and the
 * tests all land in one bin/ directory). 0, or -EINVAL/-ENAMETOOLONG. */
int vm_xml_virtiofsd_ro(char *buf, size_t size);
