package org.dedupsnapshotter.mount;

/**
 * Whether layer mounts ask the kernel for EROFS page-cache sharing between inodes of equal fingerprint (Linux 7.0
 * mount options inode_share and domain_id, decision 36), found once at start by the daemon's probe.
 *
 * @param domainId the trust domain: only mounts with the same domain_id share; one for the whole node
 * @param reason   why not, when unsupported
 * @param fingerprints whether images carry fingerprints: only where the kernel reads their long xattr name
 *                     prefixes (INCOMPAT_XATTR_PREFIXES, Linux >= 6.4); an older one refuses to mount such an image
 */
public record InodeShare(boolean supported, String domainId, String reason, boolean fingerprints) {
    /** Every layer mount of this node shares page cache within this domain. */
    public static final String NODE_DOMAIN = "dedup-snapshotter";

    public static InodeShare on(String domainId) { return new InodeShare(true, domainId, "", true); }

    /** No sharing, but images carry fingerprints, ready for a kernel that shares. */
    public static InodeShare unsupported(String reason) { return new InodeShare(false, "", reason, true); }

    /** No sharing, and images without fingerprints: this kernel could not mount them. */
    public static InodeShare unreadable(String reason) { return new InodeShare(false, "", reason, false); }

    /** The options to append to a layer mount's data, "" when unsupported. */
    public String mountOptions() { return supported ? "inode_share,domain_id=" + domainId : ""; }
}
