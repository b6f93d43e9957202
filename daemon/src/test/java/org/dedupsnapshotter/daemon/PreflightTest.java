package org.dedupsnapshotter.daemon;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Whether the kernel decodes the configured compression (on by default, decision 69): its config decides, else its release. */
class PreflightTest {
    static final String WITH_ZSTD = "CONFIG_EROFS_FS=y\nCONFIG_EROFS_FS_ZIP=y\nCONFIG_EROFS_FS_ZIP_ZSTD=y\n";
    static final String WITHOUT_ZSTD = "CONFIG_EROFS_FS=m\nCONFIG_EROFS_FS_ZIP=y\n# CONFIG_EROFS_FS_ZIP_ZSTD is not set\n";

    @Test
    void theKernelsConfigDecides() {
        assertNull(Preflight.cannotDecode("zstd", WITH_ZSTD, "6.18.44"));
        String no = Preflight.cannotDecode("zstd", WITHOUT_ZSTD, "6.18.44");
        assertTrue(no != null && no.contains("CONFIG_EROFS_FS_ZIP_ZSTD"), no);
        assertNull(Preflight.cannotDecode("lz4hc", WITHOUT_ZSTD, "6.1.0"));
        assertNotNull(Preflight.cannotDecode("lz4hc", "CONFIG_EROFS_FS=y\n# CONFIG_EROFS_FS_ZIP is not set\n", "6.1.0"));
        assertNull(Preflight.cannotDecode("none", "", "5.10.0"), "uncompressed layers need no codec");
    }

    @Test
    void withoutAConfigTheReleaseDecides() {
        assertNull(Preflight.cannotDecode("zstd", null, "6.10.0-1-amd64"));
        assertNull(Preflight.cannotDecode("zstd", null, "7.0.2"));
        String old = Preflight.cannotDecode("zstd", null, "6.8.0-51-generic");
        assertTrue(old != null && old.contains("6.10"), old);
        assertNull(Preflight.cannotDecode("lz4hc", null, "6.1.0"));
        assertNull(Preflight.cannotDecode("zstd", null, "unknown"), "an unknown release is not refused");
    }

    /** This machine (kernel 6.18 with CONFIG_EROFS_FS_ZIP_ZSTD=y, where the itests mount ZSTD layers). */
    @Test
    void thisKernelDecodesBoth() {
        assertNull(Preflight.cannotDecode("lz4hc"));
        assertNull(Preflight.cannotDecode("zstd"));
    }
}
