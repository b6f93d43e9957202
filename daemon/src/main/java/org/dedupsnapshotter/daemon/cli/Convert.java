package org.dedupsnapshotter.daemon.cli;

import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.lazy.convert.ImageConverter;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** dedupctl convert [--plain-http] [--chunk-size SIZE] SRC DST: runs in the CLI's process, without the daemon. */
final class Convert {
    private Convert() {}

    static int run(String[] args) {
        boolean plainHttp = false;
        long chunk = 4L << 20;
        List<String> refs = new ArrayList<>();
        for (int j = 0; j < args.length; j++) {
            switch (args[j]) {
                case "--plain-http" -> plainHttp = true;
                case "--chunk-size" -> {
                    if (j + 1 >= args.length) return usage("--chunk-size needs a size, e.g. 4MiB");
                    try {
                        chunk = ConfigLoader.chunkSize(args[++j], "--chunk-size");
                    } catch (ConfigException e) {
                        return usage(e.getMessage());
                    }
                }
                default -> {
                    if (args[j].startsWith("--")) return usage("unknown option " + args[j]);
                    refs.add(args[j]);
                }
            }
        }
        if (refs.size() != 2) return usage("give SRC and DST");
        try {
            ImageConverter.Report r = ImageConverter.convert(refs.get(0), refs.get(1),
                    new ImageConverter.Options((int) chunk, plainHttp, Runtime.getRuntime().availableProcessors(), System.out));
            long tar = r.layers().stream().mapToLong(ImageConverter.LayerReport::tarSize).sum();
            long before = r.layers().stream().mapToLong(ImageConverter.LayerReport::sourceSize).sum();
            long after = r.layers().stream().mapToLong(ImageConverter.LayerReport::size).sum();
            System.out.printf("pushed %s@%s: %d layers, %d bytes of layer blobs (source %d), %.1f s, %.1f MB/s of tar%n",
                    r.reference(), r.manifestDigest(), r.layers().size(), after, before, r.seconds(), tar / 1e6 / Math.max(r.seconds(), 1e-3));
            return 0;
        } catch (IOException e) {
            System.err.println("dedupctl convert: " + e.getMessage());
            return 1;
        }
    }

    private static int usage(String why) {
        System.err.println("dedupctl convert: " + why + "\nusage: dedupctl convert [--plain-http] [--chunk-size SIZE] SRC DST");
        return 2;
    }
}
