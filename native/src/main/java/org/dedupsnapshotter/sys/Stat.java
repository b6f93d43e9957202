package org.dedupsnapshotter.sys;

/** The fields of struct stat we use (x86_64 layout). mtime in nanoseconds since the epoch. */
public record Stat(long dev, long ino, long nlink, int mode, int uid, int gid, long rdev, long size, long blocks, long mtimeNanos) {
    public static final int S_IFMT = 0170000, S_IFDIR = 0040000, S_IFREG = 0100000, S_IFLNK = 0120000,
            S_IFCHR = 0020000, S_IFBLK = 0060000, S_IFIFO = 0010000, S_IFSOCK = 0140000;

    public int type() { return mode & S_IFMT; }
    public boolean isDir() { return type() == S_IFDIR; }
    public boolean isRegular() { return type() == S_IFREG; }
    public boolean isSymlink() { return type() == S_IFLNK; }
    public int rdevMajor() { return (int) (((rdev >>> 32) & 0xfffff000L) | ((rdev >>> 8) & 0xfffL)); }
    public int rdevMinor() { return (int) (((rdev >>> 12) & 0xffffff00L) | (rdev & 0xffL)); }
}
