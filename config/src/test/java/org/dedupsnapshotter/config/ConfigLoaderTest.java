package org.dedupsnapshotter.config;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

class ConfigLoaderTest {
    @Test
    void emptyObjectGivesDefaults() throws Exception {
        assertEquals(Config.defaults(), ConfigLoader.parse("{}", "t"));
    }

    @Test
    void valuesOverrideDefaults() throws Exception {
        Config c = ConfigLoader.parse("{\"root\": \"/srv/d\", \"chunkSize\": \"1MiB\", \"mountBackend\": \"loop\"}", "t");
        assertEquals(Path.of("/srv/d"), c.root());
        assertEquals(1 << 20, c.chunkSize());
        assertEquals("loop", c.mountBackend());
        assertEquals(65536, ConfigLoader.parse("{\"chunkSize\": 65536}", "t").chunkSize());
    }

    @Test
    void errorsNameTheKeyAndTheExpectedForm() throws Exception {
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"rooot\": \"/x\"}", "t")).getMessage().contains("unknown key \"rooot\""));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": \"relative\"}", "t")).getMessage().contains("\"root\" must be an absolute path"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"chunkSize\": \"3MiB\"}", "t")).getMessage().contains("\"chunkSize\" must be a power of two"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"chunkSize\": \"lots\"}", "t")).getMessage().contains("\"chunkSize\" must be a positive size"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"mountBackend\": \"nbd\"}", "t")).getMessage().contains("\"mountBackend\" must be one of"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"erofsBuilder\": \"mkfs\"}", "t")).getMessage().contains("\"erofsBuilder\" must be one of"));
        assertEquals("mkfs.erofs", ConfigLoader.parse("{\"erofsBuilder\": \"mkfs.erofs\"}", "t").erofsBuilder());
        assertEquals("native", ConfigLoader.parse("{}", "t").erofsBuilder());
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": ", "t")).getMessage().contains("not valid JSON"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": \"/a\", \"root\": \"/b\"}", "t")).getMessage().contains("root"));
    }

    /** idlePageOut (decision 85): what the quiet daemon does with its files' clean pages; a wrong value is refused naming the key. */
    @Test
    void idlePageOutIsPagesByDefaultOrReadAroundOrOff() throws Exception {
        assertEquals("pages", ConfigLoader.parse("{}", "t").idlePageOut());
        assertEquals("read-around", ConfigLoader.parse("{\"idlePageOut\": \"read-around\"}", "t").idlePageOut());
        assertEquals("off", ConfigLoader.parse("{\"idlePageOut\": \"off\"}", "t").idlePageOut());
        String m = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"idlePageOut\": \"random\"}", "t")).getMessage();
        assertTrue(m.contains("\"idlePageOut\" must be one of") && m.contains("pages") && m.contains("read-around") && m.contains("off"), m);
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"idlePageOut\": false}", "t")).getMessage().contains("\"idlePageOut\""));
    }

    /** poolReads (decisions 68, 70): how complete layers read the pool; a wrong value is refused naming the key. */
    @Test
    void poolReadsIsAutoByDefaultOrDirectOrBuffered() throws Exception {
        assertEquals("auto", ConfigLoader.parse("{}", "t").poolReads());
        assertEquals("buffered", ConfigLoader.parse("{\"poolReads\": \"buffered\"}", "t").poolReads());
        assertEquals("direct", ConfigLoader.parse("{\"poolReads\": \"direct\"}", "t").poolReads());
        String m = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"poolReads\": \"trimmed\"}", "t")).getMessage();
        assertTrue(m.contains("\"poolReads\" must be one of") && m.contains("buffered") && m.contains("direct") && m.contains("auto"), m);
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"poolReads\": true}", "t")).getMessage().contains("\"poolReads\""));
    }

    @Test
    void compressionIsZstdAtCompactionByDefaultAndNeedsOurWriter() throws Exception {
        // decision 69: Commit writes uncompressed layers, compaction rewrites them as ZSTD 9 in 128 KiB pclusters after 1 minute idle
        Config.Compression d = ConfigLoader.parse("{}", "t").compression();
        assertEquals(new Config.Compression("zstd", 3, 128 << 10, "compaction", 9, Duration.ofMinutes(1)), d);
        assertEquals(Config.Compression.defaults(), d);
        assertTrue(d.enabled());
        assertFalse(d.atCommit());
        // the way to turn it off: nothing compressed, nothing compacted
        Config.Compression off = ConfigLoader.parse("{\"compression\": \"none\"}", "t").compression();
        assertEquals(Config.Compression.none(), off);
        assertFalse(off.enabled());
        assertFalse(off.atCommit());
        assertEquals(Duration.ZERO, off.compactWhenIdle());
        Config.Compression c = ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressAt\": \"commit\", \"compactWhenIdle\": 0, \"compressionLevel\": 9, "
                + "\"pclusterSize\": \"128KiB\"}", "t").compression();
        assertEquals(new Config.Compression("lz4hc", 9, 128 << 10), c);
        assertTrue(c.enabled());
        // LZ4 HC keeps its 64 KiB pclusters; a chunk smaller than the default pcluster caps it
        assertEquals(64 << 10, ConfigLoader.parse("{\"compression\": \"lz4hc\"}", "t").compression().pclusterSize());
        assertEquals(32 << 10, ConfigLoader.parse("{\"chunkSize\": \"32KiB\"}", "t").compression().pclusterSize());
        String tiny = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"chunkSize\": \"4KiB\"}", "t")).getMessage();
        assertTrue(tiny.contains("\"compression\": \"none\" turns it off"), tiny);
        assertFalse(ConfigLoader.parse("{\"chunkSize\": \"4KiB\", \"compression\": \"none\"}", "t").compression().enabled());
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lzma\"}", "t")).getMessage().contains("\"compression\" must be one of"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compressionLevel\": 23}", "t")).getMessage().contains("\"compressionLevel\" must be"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressionLevel\": 13}", "t")).getMessage()
                .contains("\"compressionLevel\" must be"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compressionLevel\": \"4\"}", "t")).getMessage().contains("\"compressionLevel\" must be"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"pclusterSize\": \"48KiB\"}", "t")).getMessage().contains("\"pclusterSize\" must be a power of two"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"pclusterSize\": \"4KiB\"}", "t")).getMessage().contains("\"pclusterSize\" must be a power of two"));
        String tooBig = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"chunkSize\": \"32KiB\", \"pclusterSize\": \"64KiB\"}", "t"))
                .getMessage();
        assertTrue(tooBig.contains("\"pclusterSize\"") && tooBig.contains("\"chunkSize\""), tooBig);
        String mkfs = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"erofsBuilder\": \"mkfs.erofs\"}", "t")).getMessage();
        assertTrue(mkfs.contains("\"compression\"") && mkfs.contains("\"erofsBuilder\""), mkfs);
        // zstd (decision 60): its own level range and default
        assertEquals(new Config.Compression("zstd", 3, 128 << 10), ConfigLoader.parse("{\"compression\": \"zstd\", \"compressAt\": \"commit\", \"compactWhenIdle\": 0, "
                + "\"compactionLevel\": 3}", "t").compression());
        assertEquals(new Config.Compression("zstd", 19, 64 << 10), ConfigLoader.parse("{\"compression\": \"zstd\", \"compressionLevel\": 19, \"pclusterSize\": \"64KiB\", "
                + "\"compressAt\": \"commit\", \"compactWhenIdle\": \"0ms\"}", "t").compression());
        String zstd23 = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"zstd\", \"compressionLevel\": 23}", "t")).getMessage();
        assertTrue(zstd23.contains("\"compressionLevel\" must be an integer from 1 to 22") && zstd23.contains("ZSTD"), zstd23);
        String lz4hc19 = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressionLevel\": 19}", "t")).getMessage();
        assertTrue(lz4hc19.contains("from 1 to 12"), lz4hc19);
        String zmkfs = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"zstd\", \"erofsBuilder\": \"mkfs.erofs\"}", "t")).getMessage();
        assertTrue(zmkfs.contains("\"compression\": \"zstd\"") && zmkfs.contains("\"erofsBuilder\""), zmkfs);
        // uncompressed layers keep mkfs.erofs selectable; choosing it alone keeps them uncompressed (as before the default changed)
        assertEquals("mkfs.erofs", ConfigLoader.parse("{\"compression\": \"none\", \"erofsBuilder\": \"mkfs.erofs\"}", "t").erofsBuilder());
        assertFalse(ConfigLoader.parse("{\"erofsBuilder\": \"mkfs.erofs\"}", "t").compression().enabled());
    }

    @Test
    void compactionKeys() throws Exception {
        Config.Compression d = ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressionLevel\": 2}", "t").compression();
        assertFalse(d.atCommit(), "compressAt defaults to compaction");
        assertEquals(2, d.compactionLevel(), "compactionLevel defaults to compressionLevel when that is given");
        assertEquals(9, ConfigLoader.parse("{\"compression\": \"lz4hc\"}", "t").compression().compactionLevel(), "else to 9");
        assertEquals(Duration.ofMinutes(1), d.compactWhenIdle());
        Config.Compression at = ConfigLoader.parse("{\"compression\": \"zstd\", \"compressAt\": \"commit\"}", "t").compression();
        assertTrue(at.atCommit());
        assertEquals(Duration.ofMinutes(1), at.compactWhenIdle(), "picks up layers committed before compression was on");
        Config.Compression c = ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressAt\": \"compaction\", \"compactionLevel\": 9, \"compactWhenIdle\": \"5m\"}", "t")
                .compression();
        assertFalse(c.atCommit());
        assertTrue(c.enabled());
        assertEquals(9, c.compactionLevel());
        assertEquals(Duration.ofMinutes(5), c.compactWhenIdle());
        assertEquals(Duration.ZERO, ConfigLoader.parse("{\"compactWhenIdle\": 0}", "t").compression().compactWhenIdle());
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compressAt\": \"pull\"}", "t")).getMessage()
                .contains("\"compressAt\" must be one of"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compactionLevel\": 0}", "t")).getMessage()
                .contains("\"compactionLevel\" must be"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"lz4hc\", \"compactWhenIdle\": \"soon\"}", "t")).getMessage()
                .contains("\"compactWhenIdle\" must be a duration"));
        // compaction writes the compressed form: with "none", its keys are an error naming both
        for (String k : new String[]{"\"compressAt\": \"compaction\"", "\"compactionLevel\": 4", "\"compactWhenIdle\": \"1m\""}) {
            String m = assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"compression\": \"none\", " + k + "}", "t")).getMessage();
            assertTrue(m.contains(k.substring(0, k.indexOf(':'))) && m.contains("\"compression\""), m);
        }
        assertFalse(ConfigLoader.parse("{\"compression\": \"none\", \"compressAt\": \"commit\", \"compactWhenIdle\": 0}", "t").compression().enabled());
    }

    @Test
    void ksmSectionLeavesTheKernelAloneByDefault() throws Exception {
        Config.Ksm k = ConfigLoader.parse("{}", "t").ksm();
        assertEquals("opt-in", k.containers());
        assertEquals(Config.KsmKernel.unchanged(), k.kernel());
        Config.Ksm set = ConfigLoader.parse("{\"ksm\": {\"containers\": \"all\", \"daemonBuffers\": true, \"runc\": \"/usr/sbin/runc\","
                + " \"kernel\": {\"run\": true, \"pagesToScan\": 1000, \"advisorMode\": \"scan-time\", \"useZeroPages\": false}}}", "t").ksm();
        assertEquals("all", set.containers());
        assertTrue(set.daemonBuffers());
        assertEquals(new Config.KsmKernel(true, 1000, null, "scan-time", false, null), set.kernel());
    }

    @Test
    void lazyHostsDirIsColonSeparatedAbsoluteDirectories() throws Exception {
        assertEquals("/etc/containerd/certs.d:/etc/docker/certs.d", ConfigLoader.parse("{}", "t").lazy().hostsDir());
        assertEquals("/a:/b", ConfigLoader.parse("{\"lazy\": {\"hostsDir\": \"/a:/b\"}}", "t").lazy().hostsDir());
        assertEquals("", ConfigLoader.parse("{\"lazy\": {\"hostsDir\": \"\"}}", "t").lazy().hostsDir());
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"lazy\": {\"hostsDir\": \"certs.d\"}}", "t")).getMessage()
                .contains("\"lazy.hostsDir\" must be absolute directories"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"lazy\": {\"hostsDir\": [\"/a\"]}}", "t")).getMessage()
                .contains("\"lazy.hostsDir\""));
    }

    @Test
    void lazyRegistriesLimitWhichImagesPullLazily() throws Exception {
        assertTrue(ConfigLoader.parse("{}", "t").lazy().lazyFrom("anything.example:5000"));
        Config.Lazy l = ConfigLoader.parse("{\"lazy\": {\"registries\": [\"registry.local:5000\", \"mirror.local\"]}}", "t").lazy();
        assertTrue(l.lazyFrom("registry.local:5000"));
        assertTrue(l.lazyFrom("mirror.local"));
        assertFalse(l.lazyFrom("registry.local"));
        assertFalse(l.lazyFrom("docker.io"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"lazy\": {\"registries\": \"x\"}}", "t")).getMessage()
                .contains("\"lazy.registries\" must be a list"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"lazy\": {\"registries\": [\"host/repo\"]}}", "t")).getMessage()
                .contains("\"lazy.registries\" must list registries as HOST or HOST:PORT"));
    }

    @Test
    void ksmErrorsNameTheKey() {
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": {\"containers\": \"some\"}}", "t")).getMessage().contains("\"ksm.containers\" must be one of"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": {\"kernel\": {\"pagesToScan\": 0}}}", "t")).getMessage().contains("\"ksm.kernel.pagesToScan\" must be an integer"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": {\"kernel\": {\"run\": 1}}}", "t")).getMessage().contains("\"ksm.kernel.run\" must be true or false"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": {\"kernel\": {\"speed\": 1}}}", "t")).getMessage().contains("unknown key \"ksm.kernel.speed\""));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": {\"runc\": \"runc\"}}", "t")).getMessage().contains("\"ksm.runc\" must be the absolute path"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"ksm\": true}", "t")).getMessage().contains("\"ksm\" must be an object"));
    }

    @Test
    void criProxyIsOffUnlessAListenSocketIsGiven() throws Exception {
        assertFalse(Config.defaults().cri().enabled());
        Config.Cri c = ConfigLoader.parse("{\"cri\": {\"listen\": \"/run/d/cri.sock\"}}", "t").cri();
        assertEquals(Path.of("/run/d/cri.sock"), c.listen());
        assertEquals(Path.of("/run/containerd/containerd.sock"), c.containerd());
        assertEquals(Path.of("/run/k3s/containerd.sock"),
                ConfigLoader.parse("{\"cri\": {\"listen\": \"/x\", \"containerd\": \"/run/k3s/containerd.sock\"}}", "t").cri().containerd());
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"cri\": {\"listen\": \"cri.sock\"}}", "t")).getMessage().contains("\"cri.listen\" must be an absolute path"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"cri\": {\"containerd\": 1}}", "t")).getMessage().contains("\"cri.containerd\" must be an absolute path"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"cri\": {\"endpoint\": \"/x\"}}", "t")).getMessage().contains("unknown key \"cri.endpoint\""));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"cri\": \"/x\"}", "t")).getMessage().contains("\"cri\" must be an object"));
    }
}
