/* pl-virtiofsd-ro: QEMU's virtiofsd serving a directory read-only.
 *
 * libvirt 9.0 refuses <readonly/> on a virtio-fs filesystem ("virtiofs does
 * not yet support read-only mode") and the C virtiofsd of QEMU 7.2 has no
 * such option, while a guest is untrusted: a read-only share must be
 * enforced on the host, not by the guest's mount options. So the domain XML
 * names this program as the filesystem's <binary> (portlayer/vm/vm-xml.c),
 * libvirt starts it with virtiofsd's arguments, and it
 *
 *   1. finds the shared directory in them ("-o source=DIR,...", commas in DIR
 *      doubled as libvirt writes them),
 *   2. moves into a mount namespace of its own (private: nothing propagates
 *      back to the host),
 *   3. bind-mounts DIR onto itself and makes that mount read-only, with every
 *      mount below it where the kernel can (mount_setattr, Linux 5.12), and
 *   4. executes the real virtiofsd (PL_VIRTIOFSD, or /usr/lib/qemu/virtiofsd)
 *      with the same arguments. virtiofsd's own sandbox binds the directory
 *      again, and a bind of a read-only mount stays read-only: every write
 *      the guest asks for fails with EROFS.
 *
 * Calls without a source (--print-capabilities, --help) go straight to
 * virtiofsd. Needs CAP_SYS_ADMIN, as virtiofsd itself does. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/mount.h>

#define VIRTIOFSD_DEFAULT "/usr/lib/qemu/virtiofsd"

/* The value of source= in one -o option list, commas undoubled; 0, 1 when
 * found (into buf), -1 when it does not fit. */
static int find_source(const char *opts, char *buf, size_t size) {
        const char *p = opts;
        while (*p) {
                bool is_source = strncmp(p, "source=", 7) == 0;
                if (is_source)
                        p += 7;
                size_t n = 0;
                for (; *p; p++) {
                        if (*p == ',' && p[1] == ',')
                                p++; /* an escaped comma */
                        else if (*p == ',')
                                break;
                        if (is_source) {
                                if (n + 1 >= size)
                                        return -1;
                                buf[n++] = *p;
                        }
                }
                if (is_source) {
                        buf[n] = 0;
                        return 1;
                }
                if (*p == ',')
                        p++;
        }
        return 0;
}

static int make_read_only(const char *dir) {
        if (unshare(CLONE_NEWNS) < 0) {
                fprintf(stderr, "pl-virtiofsd-ro: unshare(CLONE_NEWNS): %m\n");
                return -1;
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0) {
                fprintf(stderr, "pl-virtiofsd-ro: bind %s: %m\n", dir);
                return -1;
        }
#ifdef SYS_mount_setattr
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (syscall(SYS_mount_setattr, AT_FDCWD, dir, AT_RECURSIVE, &attr, sizeof attr) == 0)
                return 0;
        if (errno != ENOSYS) {
                fprintf(stderr, "pl-virtiofsd-ro: mount_setattr %s read-only: %m\n", dir);
                return -1;
        }
#endif
        /* Older kernels: the top mount only. */
        if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
                fprintf(stderr, "pl-virtiofsd-ro: remount %s read-only: %m\n", dir);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *real = getenv("PL_VIRTIOFSD");
        if (!real || !*real)
                real = VIRTIOFSD_DEFAULT;
        static char source[4096];
        int found = 0;
        for (int i = 1; i < argc && found == 0; i++) {
                if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
                        found = find_source(argv[++i], source, sizeof source);
                else if (strncmp(argv[i], "-o", 2) == 0)
                        found = find_source(argv[i] + 2, source, sizeof source);
        }
        if (found < 0) {
                fprintf(stderr, "pl-virtiofsd-ro: source path too long\n");
                return 1;
        }
        if (found > 0 && (source[0] != '/' || make_read_only(source) < 0))
                return 1;
        argv[0] = (char *) real;
        execv(real, argv);
        fprintf(stderr, "pl-virtiofsd-ro: cannot execute %s: %m\n", real);
        return 127;
}
