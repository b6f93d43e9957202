package org.dedupsnapshotter.api;

/** Disk usage of a snapshot: bytes and inodes, as containerd's Usage reports them. */
public record Usage(long size, long inodes) {
    public static final Usage ZERO = new Usage(0, 0);
}
