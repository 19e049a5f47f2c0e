/* init.c: stage 1 and stage 3 of the agent as PID 1 (see init.h).
 *
 * There is no udev in the initramfs: devices are found through sysfs (the
 * serial attribute of each /sys/block/vd? disk, the name attribute of each
 * /sys/class/virtio-ports/vport?p? port), and waited for
 * with a deadline, as virtio probing runs asynchronously after the modules
 * load. Modules are loaded with finit_module() in the order the initramfs
 * builder wrote to /lib/modules/order. */
#include "guest-agent/init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/parse-util.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

/* ---- configuration ------------------------------------------------------- */

static int set_string(char *dst, size_t size, const char *key, const char *value, Error **err) {
        if (strlen(value) >= size)
                return error_set(err, EINVAL, "kernel command line: %s is longer than %zu bytes", key, size - 1);
        strcpy(dst, value);
        return 0;
}

static int set_number(unsigned *dst, unsigned max, const char *key, const char *value, Error **err) {
        uint32_t v;
        if (safe_atou32(value, &v) < 0 || v > max)
                return error_set(err, EINVAL, "kernel command line: %s=%s is not a number up to %u", key, value, max);
        *dst = (unsigned) v;
        return 0;
}

static int init_config_apply(InitConfig *c, const char *key, const char *value, Error **err) {
        unsigned n = 0;
        int r;
        if (strcmp(key, "pl.port") == 0)
                return set_string(c->port_name, sizeof c->port_name, key, value, err);
        if (strcmp(key, "pl.root") == 0)
                return set_string(c->root_serial, sizeof c->root_serial, key, value, err);
        if (strcmp(key, "pl.fstype") == 0)
                return set_string(c->fstype, sizeof c->fstype, key, value, err);
        if (strcmp(key, "pl.hostname") == 0)
                return set_string(c->hostname, sizeof c->hostname, key, value, err);
        if (strcmp(key, "pl.dns") == 0)
                return set_string(c->dns, sizeof c->dns, key, value, err);
        if (strcmp(key, "pl.vsock") == 0)
                return set_number(&c->vsock_port, UINT32_MAX - 1, key, value, err);
        if (strcmp(key, "pl.ro") == 0 || strcmp(key, "pl.debug") == 0) {
                if ((r = set_number(&n, 1, key, value, err)) < 0)
                        return r;
                *(key[3] == 'r' ? &c->root_ro : &c->debug) = n;
                return 0;
        }
        if (strcmp(key, "pl.vsock_local") == 0) {
                if ((r = set_number(&n, 1, key, value, err)) < 0)
                        return r;
                c->vsock_local = n;
                return 0;
        }
        if (strcmp(key, "pl.pool") == 0) {
                if ((r = set_number(&n, 1, key, value, err)) < 0)
                        return r;
                c->pool = n;
                return 0;
        }
        if (strcmp(key, "pl.grow") == 0) {
                if ((r = set_number(&n, 1, key, value, err)) < 0)
                        return r;
                c->root_grow = n;
                return 0;
        }
        if (strcmp(key, "pl.report_order") == 0) {
                if ((r = set_number(&n, INIT_REPORT_ORDER_MAX, key, value, err)) < 0)
                        return r;
                c->report_order = (int) n;
                return 0;
        }
        if (strcmp(key, "pl.wait") == 0) {
                if ((r = set_number(&n, 600000, key, value, err)) < 0)
                        return r;
                c->wait_ms = (int) n;
                return 0;
        }
        return error_set(err, EINVAL, "kernel command line: unknown setting '%s'", key);
}

int init_config_parse(const char *cmdline, InitConfig *c, Error **err) {
        *c = (InitConfig){.fstype = "ext4", .vsock_port = INIT_DEFAULT_VSOCK_PORT, .wait_ms = 10000,
                          .hostname = "container", .root_grow = true, .report_order = -1};
        strcpy(c->port_name, INIT_DEFAULT_PORT);
        strcpy(c->root_serial, INIT_DEFAULT_ROOT_SERIAL);
        _cleanup_free_ char *copy = strdup(cmdline ? cmdline : "");
        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                if (strncmp(w, "pl.", 3) != 0)
                        continue;
                char *eq = strchr(w, '=');
                if (!eq)
                        return error_set(err, EINVAL, "kernel command line: '%s' has no value", w);
                *eq = 0;
                int r = init_config_apply(c, w, eq + 1, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static int mount_at(const char *src, const char *target, const char *type, unsigned long flags, const char *data,
                    Error **err) {
        int r = mkdir_p(target, 0755);
        if (r < 0)
                return error_set_errno(err, -r, "create mount point %s", target);
        if (mount(src, target, type, flags, data) < 0 && errno != EBUSY)
                return error_set_errno(err, errno, "mount %s on %s", type, target);
        return 0;
}

static void sleep_ms(int ms) {
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

/* Reads a small sysfs attribute, without the trailing newline. */
static int read_attr(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return negative_errno();
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = 0;
        return 0;
}

/* Finds the entry of dir whose attribute file attr reads want; returns its
 * name in ret (size bytes) or -ENOENT. */
static int find_by_attr(const char *dir, const char *prefix, const char *attr, const char *want, char *ret,
                        size_t size) {
        DIR *d = opendir(dir);
        if (!d)
                return negative_errno();
        int r = -ENOENT;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
                        continue;
                char path[512], value[256];
                snprintf(path, sizeof path, "%s/%s/%s", dir, de->d_name, attr);
                if (read_attr(path, value, sizeof value) == 0 && strcmp(value, want) == 0 &&
                    strlen(de->d_name) < size) {
                        strcpy(ret, de->d_name);
                        r = 0;
                        break;
                }
        }
        closedir(d);
        return r;
}

int init_wait_for_attr(const char *dir, const char *prefix, const char *attr, const char *want, int wait_ms,
                       char *ret, size_t size) {
        uint64_t deadline = deadline_after_ms(wait_ms);
        for (;;) {
                int r = find_by_attr(dir, prefix, attr, want, ret, size);
                if (r == 0 || deadline_poll_ms(deadline) == 0)
                        return r;
                sleep_ms(10);
        }
}

/* ---- stage 1 ------------------------------------------------------------- */

static int mount_kernel_filesystems(Error **err) {
        int r;
        if ((r = mount_at("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err)) < 0 ||
            (r = mount_at("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err)) < 0 ||
            (r = mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err)) < 0 ||
            (r = mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", err)) < 0 ||
            (r = mount_at("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err)) < 0 ||
            (r = mount_at("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err)) < 0)
                return r;
        return 0;
}

/* Loads the modules listed in /lib/modules/order; a module already present
 * (built in or loaded) is fine. */
static int load_modules(Error **err) {
        FILE *f = fopen("/lib/modules/order", "re");
        if (!f)
                return errno == ENOENT ? 0 : error_set_errno(err, errno, "open /lib/modules/order");
        char line[256];
        int r = 0;
        while (r == 0 && fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                if (!line[0] || strchr(line, '/'))
                        continue;
                char path[300];
                snprintf(path, sizeof path, "/lib/modules/%s", line);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        r = error_set_errno(err, errno, "open module %s", path);
                        break;
                }
                bool compressed = strstr(line, ".ko.") != NULL;
                if (syscall(SYS_finit_module, fd, "", compressed ? MODULE_INIT_COMPRESSED_FILE : 0) < 0 &&
                    errno != EEXIST)
                        r = error_set_errno(err, errno, "load module %s", line);
                else
                        log_debug("loaded module %s", line);
        }
        fclose(f);
        return r;
}

/* Free page reporting (the virtio balloon's, which the host asks for to
 * get back what the guest freed) only reports free blocks of 2^order pages,
 * and only while the zone keeps 32 such blocks above its low watermark: at
 * the kernel's order (9, 2 MiB) some 64 MiB freed after boot stays on the
 * host. Linux 6.1's balloon driver sets the order when it binds, over the
 * command line's page_reporting.page_reporting_order, so it is set here,
 * after the modules loaded. */
static void set_report_order(const InitConfig *c) {
        static const char path[] = "/sys/module/page_reporting/parameters/page_reporting_order";
        if (c->report_order < 0)
                return;
        char v[16];
        int n = snprintf(v, sizeof v, "%d\n", c->report_order);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, v, (size_t) n) < 0)
                log_warning("cannot set the free page reporting order to %d: %m", c->report_order);
}

/* The kernel must be able to hand out random numbers without blocking: the
 * virtio-rng device and random.trust_cpu=on give it entropy early; this only
 * checks, and warns after a bounded wait rather than stalling boot. */
static void check_entropy(void) {
        uint8_t b;
        for (int i = 0; i < 200; i++) {
                if (getrandom(&b, 1, GRND_NONBLOCK) == 1)
                        return;
                sleep_ms(10);
        }
        log_warning("the kernel has no entropy yet after 2 s; continuing");
}

/* Mounts the root disk; path (size bytes) receives its device node. */
static int mount_container_root(const InitConfig *c, char *path, size_t size, Error **err) {
        char dev[64];
        int r = init_wait_for_attr("/sys/block", "vd", "serial", c->root_serial, c->wait_ms, dev, sizeof dev);
        if (r < 0)
                return error_set(err, ENODEV, "no virtio disk with serial '%s' appeared within %d ms", c->root_serial,
                                 c->wait_ms);
        snprintf(path, size, "/dev/%s", dev);
        if ((r = mkdir_p(INIT_ROOT_MOUNT, 0755)) < 0)
                return error_set_errno(err, -r, "create %s", INIT_ROOT_MOUNT);
        /* A hot-plugged disk shows in sysfs a moment before it opens (ENXIO). */
        uint64_t deadline = deadline_after_ms(c->wait_ms);
        while (mount(path, INIT_ROOT_MOUNT, c->fstype, MS_NODEV | (c->root_ro ? MS_RDONLY : 0), NULL) < 0) {
                if (errno != ENXIO || deadline_poll_ms(deadline) == 0)
                        return error_set_errno(err, errno, "mount root disk %s (serial '%s') as %s", path,
                                               c->root_serial, c->fstype);
                sleep_ms(10);
        }
        log_info("root disk %s (serial '%s') mounted on %s%s", path, c->root_serial, INIT_ROOT_MOUNT,
                 c->root_ro ? " read-only" : "");
        return 0;
}

/* The container gets its own small /dev on a tmpfs, as under Docker: the
 * guest's devtmpfs is one shared instance, and the container must not be able
 * to remove the agent's port or reach the raw disks. */
static int populate_container_dev(Error **err) {
        static const struct {
                const char *name;
                unsigned major, minor;
        } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
        static const struct {
                const char *name, *target;
        } links[] = {{"ptmx", "pts/ptmx"},       {"fd", "/proc/self/fd"},   {"stdin", "/proc/self/fd/0"},
                     {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
        char path[128];
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                snprintf(path, sizeof path, "%s/dev/%s", INIT_ROOT_MOUNT, nodes[i].name);
                if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0 || chmod(path, 0666) < 0)
                        return error_set_errno(err, errno, "create %s", path);
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(path, sizeof path, "%s/dev/%s", INIT_ROOT_MOUNT, links[i].name);
                if (symlink(links[i].target, path) < 0)
                        return error_set_errno(err, errno, "create %s", path);
        }
        return 0;
}

static int mount_container_filesystems(Error **err) {
        static const struct {
                const char *src, *target, *type, *data;
                unsigned long flags;
        } mounts[] = {
                {"proc", INIT_ROOT_MOUNT "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
                {"sysfs", INIT_ROOT_MOUNT "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY},
                {"tmpfs", INIT_ROOT_MOUNT "/dev", "tmpfs", "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC},
                {"devpts", INIT_ROOT_MOUNT "/dev/pts", "devpts", "newinstance,mode=0620,ptmxmode=0666",
                 MS_NOSUID | MS_NOEXEC},
                {"tmpfs", INIT_ROOT_MOUNT "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV},
                {"tmpfs", INIT_ROOT_MOUNT "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV},
        };
        for (size_t i = 0; i < ELEMENTSOF(mounts); i++) {
                int r = mount_at(mounts[i].src, mounts[i].target, mounts[i].type, mounts[i].flags, mounts[i].data, err);
                if (r < 0)
                        return r;
                if (strcmp(mounts[i].target, INIT_ROOT_MOUNT "/dev") == 0 && (r = populate_container_dev(err)) < 0)
                        return r;
        }
        return 0;
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        return write_all(fd, text, strlen(text));
}

/* The container's /etc/machine-id, when its image has none (missing, empty
 * or systemd's "uninitialized"): 128 random bits, drawn after the pool's
 * activate reseeded the RNG, so no two guests share one. An image's own id
 * is left alone, as Docker does. */
static int write_machine_id(void) {
        static const char path[] = INIT_ROOT_MOUNT "/etc/machine-id";
        char old[64] = "";
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, old, sizeof old - 1);
                old[n > 0 ? n : 0] = 0;
        }
        old[strcspn(old, "\n")] = 0;
        if (old[0] && strcmp(old, "uninitialized") != 0)
                return 0;
        uint8_t id[16];
        if (getrandom(id, sizeof id, 0) != (ssize_t) sizeof id)
                return -errno;
        char text[34];
        for (size_t i = 0; i < sizeof id; i++)
                snprintf(text + 2 * i, 3, "%02x", id[i]);
        text[32] = '\n';
        text[33] = 0;
        return write_file(path, text);
}

/* hostname, /etc/hostname, /etc/hosts, /etc/machine-id and /etc/resolv.conf
 * of the container. A read-only root keeps its own files. */
static int write_identity(const InitConfig *c, Error **err) {
        if (sethostname(c->hostname, strlen(c->hostname)) < 0)
                return error_set_errno(err, errno, "set hostname '%s'", c->hostname);
        if (c->root_ro)
                return 0;
        char text[1024];
        int r = mkdir_p(INIT_ROOT_MOUNT "/etc", 0755);
        snprintf(text, sizeof text, "%s\n", c->hostname);
        if (r >= 0)
                r = write_file(INIT_ROOT_MOUNT "/etc/hostname", text);
        snprintf(text, sizeof text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
                 c->hostname);
        if (r >= 0)
                r = write_file(INIT_ROOT_MOUNT "/etc/hosts", text);
        if (r >= 0)
                r = write_machine_id();
        if (r >= 0 && c->dns[0]) {
                size_t n = 0;
                char dns[sizeof c->dns];
                strcpy(dns, c->dns);
                for (char *save = NULL, *s = strtok_r(dns, ",", &save); s; s = strtok_r(NULL, ",", &save))
                        n += (size_t) snprintf(text + n, sizeof text - n, "nameserver %s\n", s);
                r = write_file(INIT_ROOT_MOUNT "/etc/resolv.conf", text);
        }
        return r < 0 ? error_set_errno(err, -r, "write the container's /etc files") : 0;
}

static int find_port(const InitConfig *c, char **ret) {
        char name[64];
        int r = init_wait_for_attr("/sys/class/virtio-ports", "vport", "name", c->port_name, c->wait_ms, name,
                                   sizeof name);
        if (r < 0)
                return r;
        return asprintf(ret, "/dev/%s", name) < 0 ? -ENOMEM : 0;
}

/* The kernel starts init with no console when the initramfs has no
 * /dev/console; now that devtmpfs is mounted, attach it to 0, 1 and 2. */
static void attach_console(void) {
        int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return;
        for (int i = 0; i < 3; i++)
                (void) dup2(fd, i);
        if (fd > 2)
                close(fd);
}

int init_early(char **ret_cmdline, Error **err) {
        int r = mount_kernel_filesystems(err);
        attach_console();
        /* The first line on the console: benchmarks take it as "/init runs". */
        log_info("PID 1 started");
        if (r < 0)
                return r;
        char buf[4096];
        if ((r = read_attr("/proc/cmdline", buf, sizeof buf)) < 0)
                return error_set_errno(err, -r, "read /proc/cmdline");
        *ret_cmdline = strdup(buf);
        return *ret_cmdline ? 0 : -ENOMEM;
}

/* A root that cannot grow still boots: the reason goes to the console and,
 * through *ret_error, to guest info. A read-only root is left as it is. */
static void grow_container_root(const InitConfig *c, const char *device, char **ret_error) {
        _cleanup_error_ Error *e = NULL;
        if (c->root_ro || !c->root_grow)
                return;
        if (init_root_grow(device, INIT_ROOT_MOUNT, &e) >= 0)
                return;
        log_error("stage 1: %s (the container keeps the image's size)", error_text(e));
        *ret_error = strdup(error_text(e));
}

int init_root_setup(const InitConfig *c, char **ret_grow_error, Error **err) {
        char device[96];
        *ret_grow_error = NULL;
        int r = mount_container_root(c, device, sizeof device, err);
        if (r < 0)
                return r;
        grow_container_root(c, device, ret_grow_error);
        if ((r = mount_container_filesystems(err)) < 0 || (r = write_identity(c, err)) < 0)
                return r;
        return 0;
}

int init_stage1(const InitConfig *c, char **ret_port, char **ret_grow_error, Error **err) {
        *ret_port = NULL;
        *ret_grow_error = NULL;
        int r = load_modules(err);
        if (r < 0)
                return r; /* without the virtio modules there is no port to find */
        set_report_order(c);
        check_entropy();
        if (find_port(c, ret_port) < 0)
                return error_set(err, ENODEV, "no virtio-serial port named '%s' appeared within %d ms", c->port_name,
                                 c->wait_ms);
        /* A pool guest gets its root later, from an activate request. */
        if (c->pool) {
                log_info("pool mode: serving without a container root until activated");
                return 0;
        }
        /* From here on the host can be told what went wrong. */
        return init_root_setup(c, ret_grow_error, err);
}

/* ---- stage 3 ------------------------------------------------------------- */

/* Decodes the octal escapes (\040 for a blank ...) /proc/self/mounts
 * writes in a mount point, in place. */
static void mount_point_unescape(char *s) {
        char *out = s;
        for (const char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                    p[3] <= '7') {
                        *out++ = (char) ((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
                        p += 3;
                } else
                        *out++ = *p;
        }
        *out = 0;
}

/* Unmounts everything mounted below the root (the container's volumes and
 * shares from setup, /dev, /proc ...), the latest first, so that every
 * file system is clean when the root itself goes. */
static void unmount_below_root(void) {
        enum { MAX_MOUNTS = 256 };
        FILE *f = fopen("/proc/self/mounts", "re");
        if (!f)
                return;
        char *points[MAX_MOUNTS], line[4096 + 512];
        size_t n = 0;
        while (n < MAX_MOUNTS && fgets(line, sizeof line, f)) {
                char *save = NULL;
                if (!strtok_r(line, " ", &save))
                        continue;
                char *point = strtok_r(NULL, " ", &save);
                if (!point || strncmp(point, INIT_ROOT_MOUNT "/", strlen(INIT_ROOT_MOUNT) + 1) != 0)
                        continue;
                mount_point_unescape(point);
                if ((points[n] = strdup(point)))
                        n++;
        }
        fclose(f);
        while (n-- > 0) {
                if (umount2(points[n], 0) < 0 && umount2(points[n], MNT_DETACH) < 0)
                        log_warning("unmount %s: %m", points[n]);
                free(points[n]);
        }
}

_noreturn_ void init_poweroff(void) {
        static const char *const inner[] = {"/dev/pts", "/dev/shm", "/dev", "/proc", "/sys", "/tmp"};
        sync();
        unmount_below_root();
        for (size_t i = 0; i < ELEMENTSOF(inner); i++) {
                char path[128];
                snprintf(path, sizeof path, "%s%s", INIT_ROOT_MOUNT, inner[i]);
                (void) umount2(path, MNT_DETACH);
        }
        if (umount2(INIT_ROOT_MOUNT, 0) < 0 && errno != EINVAL)
                (void) mount(NULL, INIT_ROOT_MOUNT, NULL, MS_REMOUNT | MS_RDONLY, NULL);
        sync();
        log_info("powering off");
        for (;;) {
                (void) reboot(RB_POWER_OFF);
                sleep(1);
        }
}
