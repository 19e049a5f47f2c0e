/* root-grow.c: stage 1 grows the container's root ext4 to its disk.
 *
 * A container disk is a qcow2 overlay of the image's ext4 with a larger
 * virtual size, but the filesystem inside still has the image's size. Right
 * after mounting it, PID 1 compares the block device's size (BLKGETSIZE64)
 * with the block count in the ext4 superblock and, when the device holds more
 * whole blocks, asks the kernel to grow the mounted filesystem online
 * (EXT4_IOC_RESIZE_FS, which every ext4 kernel has: resize.o is built with
 * CONFIG_EXT4_FS; a filesystem without a resize inode is converted to
 * meta_bg by the kernel on the way). The decision is a pure function so it
 * can be tested without a guest. A failed grow never fails the boot: the
 * caller logs it and reports it in guest info (root_grow_error). */
#include "guest-agent/init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"

#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif

#define EXT4_SUPERBLOCK_OFFSET 1024
#define EXT4_SUPER_MAGIC_VALUE 0xEF53u
#define EXT4_INCOMPAT_64BIT 0x80u
#define EXT4_MAX_LOG_BLOCK_SIZE 6u /* 64 KiB blocks */

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

int init_ext4_geometry_parse(const uint8_t *sb, size_t len, Ext4Geometry *ret) {
        if (len < INIT_EXT4_SUPERBLOCK_SIZE)
                return -EINVAL;
        if ((uint32_t) (sb[0x38] | sb[0x39] << 8) != EXT4_SUPER_MAGIC_VALUE)
                return -EINVAL;
        uint32_t log_block = le32(sb + 0x18);
        if (log_block > EXT4_MAX_LOG_BLOCK_SIZE)
                return -EINVAL;
        bool is_64bit = (le32(sb + 0x60) & EXT4_INCOMPAT_64BIT) != 0;
        uint64_t blocks = le32(sb + 0x04);
        if (is_64bit)
                blocks |= (uint64_t) le32(sb + 0x150) << 32;
        if (blocks == 0)
                return -EINVAL;
        *ret = (Ext4Geometry){.block_size = 1024u << log_block, .blocks = blocks, .is_64bit = is_64bit};
        return 0;
}

int init_root_grow_target(uint64_t device_bytes, const Ext4Geometry *g, uint64_t *ret_blocks) {
        if (g->block_size < 1024 || (g->block_size & (g->block_size - 1)) != 0 || g->blocks == 0)
                return -EINVAL;
        uint64_t blocks = device_bytes / g->block_size;
        /* Without the 64bit feature block numbers are 32 bits wide. */
        if (!g->is_64bit)
                blocks = MIN(blocks, (uint64_t) UINT32_MAX);
        if (blocks <= g->blocks)
                return 0;
        *ret_blocks = blocks;
        return 1;
}

int init_root_grow(const char *device, const char *mountpoint, Error **err) {
        _cleanup_close_ int dev = open(device, O_RDONLY | O_CLOEXEC);
        if (dev < 0)
                return error_set_errno(err, errno, "grow root: open %s", device);
        uint64_t device_bytes = 0;
        if (ioctl(dev, BLKGETSIZE64, &device_bytes) < 0)
                return error_set_errno(err, errno, "grow root: size of %s", device);
        /* Read through the block device's page cache, which the mounted
         * filesystem's superblock buffer shares: the count is current. */
        uint8_t sb[INIT_EXT4_SUPERBLOCK_SIZE];
        ssize_t n = pread(dev, sb, sizeof sb, EXT4_SUPERBLOCK_OFFSET);
        if (n < 0)
                return error_set_errno(err, errno, "grow root: read the superblock of %s", device);
        Ext4Geometry g;
        if (init_ext4_geometry_parse(sb, (size_t) n, &g) < 0)
                return error_set(err, EINVAL, "grow root: %s holds no ext4 superblock we understand", device);
        uint64_t blocks = 0;
        int r = init_root_grow_target(device_bytes, &g, &blocks);
        if (r <= 0) {
                log_debug("root filesystem already fills %s (%llu blocks of %u bytes)", device,
                          (unsigned long long) g.blocks, g.block_size);
                return r < 0 ? error_set(err, EINVAL, "grow root: bad geometry of %s", device) : 0;
        }
        _cleanup_close_ int root = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return error_set_errno(err, errno, "grow root: open %s", mountpoint);
        uint64_t t0 = now_usec();
        if (ioctl(root, EXT4_IOC_RESIZE_FS, &blocks) < 0)
                return error_set_errno(err, errno, "grow root: resize %s from %llu to %llu blocks of %u bytes",
                                       device, (unsigned long long) g.blocks, (unsigned long long) blocks,
                                       g.block_size);
        log_info("root filesystem grown from %llu to %llu MiB in %llu ms",
                 (unsigned long long) (g.blocks * g.block_size >> 20),
                 (unsigned long long) (blocks * g.block_size >> 20),
                 (unsigned long long) ((now_usec() - t0) / USEC_PER_MSEC));
        return 1;
}
