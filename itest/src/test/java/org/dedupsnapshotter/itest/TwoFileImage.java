package org.dedupsnapshotter.itest;

import java.util.List;

/**
 * An image of the registry tests, pushed to a TestEnv's open registry as original: the base layer plus data/first,
 * then a layer adding data/second, each 3 MiB of random bytes unlike any other test's (seed).
 */
record TwoFileImage(String original, byte[] first, byte[] second) {

    static TwoFileImage push(TestEnv env, String name, long seed) throws Exception {
        byte[] first = Images.random(seed, 3 << 20), second = Images.random(seed + 1, 3 << 20);
        TarWriter l1 = Images.base().dir("data", TarWriter.Meta.of(0755)).file("data/first", first, TarWriter.Meta.of(0644));
        TarWriter l2 = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755))
                .file("data/second", second, TarWriter.Meta.of(0644));
        return new TwoFileImage(OciImage.push(env.registry(), "itest/" + name, "1", List.of(l1.finish(), l2.finish()), List.of("/bin/sh")), first, second);
    }
}
