/* vm-accel.c: choosing between KVM and TCG.
 *
 * /dev/kvm can exist without being usable: a nested or paravirtual host may
 * expose the device while the CPU offers no vmx/svm, and a stock guest kernel
 * then fails or crawls. So KVM counts only when all three hold: the CPU flags
 * in /proc/cpuinfo name vmx or svm, /dev/kvm opens read-write, and
 * KVM_GET_API_VERSION answers the stable API version 12. Anything else means
 * TCG, with a reason an operator can act on. */
#include "portlayer/vm/vm-driver.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUINFO_LINE_MAX (64u * 1024u)

static bool flags_have_virt(const char *flags) {
        const char *p = flags;
        while (*p) {
                size_t n = strcspn(p, " \t\n");
                if ((n == 3 && strncmp(p, "vmx", 3) == 0) || (n == 3 && strncmp(p, "svm", 3) == 0))
                        return true;
                p += n;
                p += strspn(p, " \t\n");
        }
        return false;
}

/* 1 when the first "flags" line names vmx or svm, 0 when not, < 0 when the
 * file cannot be read. */
static int cpuinfo_has_virt(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return negative_errno();
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        int found = 0;
        ssize_t n;
        while ((n = getline(&line, &size, f)) > 0) {
                if ((size_t) n > CPUINFO_LINE_MAX || strncmp(line, "flags", 5) != 0)
                        continue;
                const char *colon = strchr(line, ':');
                found = colon && flags_have_virt(colon + 1);
                break;
        }
        fclose(f);
        return found;
}

/* 0 when kvm_path opens and speaks API version 12; else a reason. */
static int kvm_device_usable(const char *kvm_path, char **ret_reason) {
        _cleanup_close_ int fd = open(kvm_path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                if (asprintf(ret_reason, "cannot open %s: %s", kvm_path, strerror(-r)) < 0)
                        *ret_reason = NULL;
                return r;
        }
        int version = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (version != KVM_API_VERSION) {
                if (asprintf(ret_reason, "%s: KVM_GET_API_VERSION returned %d, not %d", kvm_path, version,
                             KVM_API_VERSION) < 0)
                        *ret_reason = NULL;
                return -ENODEV;
        }
        return 0;
}

/* 0 when KVM is usable; else -ENODEV (or another errno) and a reason. */
static int kvm_usable(const char *cpuinfo_path, const char *kvm_path, char **ret_reason) {
        int r = cpuinfo_has_virt(cpuinfo_path);
        if (r < 0) {
                if (asprintf(ret_reason, "cannot read %s: %s", cpuinfo_path, strerror(-r)) < 0)
                        *ret_reason = NULL;
                return r;
        }
        if (r == 0) {
                if (asprintf(ret_reason, "no vmx/svm in %s", cpuinfo_path) < 0)
                        *ret_reason = NULL;
                return -ENODEV;
        }
        return kvm_device_usable(kvm_path, ret_reason);
}

int vm_accel_detect_at(VmAccel requested, const char *cpuinfo_path, const char *kvm_path, VmAccel *ret,
                       char **ret_reason) {
        _cleanup_free_ char *reason = NULL;
        int r = 0;

        switch (requested) {
        case VM_ACCEL_TCG:
                *ret = VM_ACCEL_TCG;
                reason = strdup("TCG requested");
                break;
        case VM_ACCEL_AUTO:
        case VM_ACCEL_KVM:
                r = kvm_usable(cpuinfo_path, kvm_path, &reason);
                if (r == 0) {
                        *ret = VM_ACCEL_KVM;
                        reason = strdup("KVM usable");
                } else if (requested == VM_ACCEL_AUTO) {
                        *ret = VM_ACCEL_TCG;
                        r = 0;
                } else {
                        r = -ENODEV; /* "KVM asked for, not there": one code for callers */
                }
                break;
        default:
                return -EINVAL;
        }
        if (ret_reason)
                *ret_reason = TAKE_PTR(reason);
        return r;
}

int vm_accel_detect(VmAccel requested, VmAccel *ret, char **ret_reason) {
        return vm_accel_detect_at(requested, "/proc/cpuinfo", "/dev/kvm", ret, ret_reason);
}

bool vm_vsock_usable(const char *path) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}
