package org.dedupsnapshotter.erofs;

import java.util.Arrays;

/**
 * The compressors our writer emits pclusters with (issue 23; decisions 50 and 60): the config name, EROFS's
 * on-disk algorithm number (z_erofs_map_header's algorithm type, a bit of the superblock's available_compr_algs)
 * and the level range. ZSTD needs a kernel with CONFIG_EROFS_FS_ZIP_ZSTD (6.10+), LZMA CONFIG_EROFS_FS_ZIP_LZMA.
 */
public enum Algorithm {
    LZ4HC("lz4hc", 0, 1, 12),
    ZSTD("zstd", 3, 1, 22),
    /** MicroLZMA (xz-java's raw LZMA1, first byte ~properties), presets 0..9: the writer and the kernel only so far (decision 60). */
    LZMA("lzma", 1, 0, 9);

    private final String configName;
    private final int erofsId, minLevel, maxLevel;

    Algorithm(String configName, int erofsId, int minLevel, int maxLevel) {
        this.configName = configName;
        this.erofsId = erofsId;
        this.minLevel = minLevel;
        this.maxLevel = maxLevel;
    }

    /** The name in the config's "compression" and in logs. */
    public String configName() { return configName; }

    /** Z_EROFS_COMPRESSION_*: 0 LZ4, 3 ZSTD. */
    public int erofsId() { return erofsId; }

    public int minLevel() { return minLevel; }

    public int maxLevel() { return maxLevel; }

    public static Algorithm of(String configName) {
        return Arrays.stream(values()).filter(a -> a.configName.equals(configName)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("compression algorithm " + configName));
    }

    static Algorithm ofErofsId(int id) {
        return Arrays.stream(values()).filter(a -> a.erofsId == id).findFirst().orElse(null);
    }
}
