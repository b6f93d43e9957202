package org.dedupsnapshotter.mount;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class LayerMounterTest {
    @Test
    void mountDataAsksForPageCacheSharingOnlyWhereTheKernelOffersIt() {
        assertEquals("device=/p", new LayerMounter("auto").data("/p", false));
        assertEquals("device=/p,directio", new LayerMounter("auto", InodeShare.unsupported("6.18")).data("/p", true));
        LayerMounter sharing = new LayerMounter("file", InodeShare.on(InodeShare.NODE_DOMAIN));
        assertEquals("device=/p,directio,inode_share,domain_id=dedup-snapshotter", sharing.data("/p", true));
        assertEquals("device=/dev/loop7,inode_share,domain_id=dedup-snapshotter", sharing.data("/dev/loop7", false));
    }

    @Test
    void compressedLayersMountWithoutTheManagedCache() {
        assertEquals("device=/p,directio,cache_strategy=disabled", new LayerMounter("auto").data("/p", true, true));
        assertEquals("device=/p,directio", new LayerMounter("auto").data("/p", true, false));
        LayerMounter sharing = new LayerMounter("file", InodeShare.on(InodeShare.NODE_DOMAIN));
        assertEquals("device=/p,directio,cache_strategy=disabled,inode_share,domain_id=dedup-snapshotter", sharing.data("/p", true, true));
    }

    @Test
    void mountInfoKeepsTheSuperOptions() {
        List<MountInfo> m = MountInfo.parse(List.of(
                "36 35 0:40 / /mnt/a\\040b ro,relatime shared:1 - erofs /img ro,user_xattr,acl,cache_strategy=readaround,inode_share,domain_id=x"));
        assertEquals(new MountInfo("/mnt/a b", "erofs", "/img", "ro,user_xattr,acl,cache_strategy=readaround,inode_share,domain_id=x"), m.getFirst());
    }
}
