package org.dedupsnapshotter.cli.checkconfig;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** check-config's findings on the shipped snippets (config/containerd-snippet-v*.toml) and on copies with items taken out. */
class ConfigCheckTest {
    private static final Path SNIPPETS = Path.of("..", "config");
    private static final ConfigCheck CHECK = new ConfigCheck(Path.of("/run/containerd/dedup-snapshotter.sock"), Path.of("/var/lib/dedup-snapshotter"), p -> true);

    private static String snippet(int version) throws Exception {
        return "version = " + version + "\n" + Files.readString(SNIPPETS.resolve("containerd-snippet-v" + version + ".toml"));
    }

    /** The snippet with its optional CRI lines switched on (they are commented out as shipped). */
    private static String withCri(String snippet) {
        return snippet.replaceAll("(?m)^# ([\\[ ])", "$1");
    }

    private static List<Finding> check(String toml, boolean containerd2) throws Exception {
        return CHECK.check(ContainerdConfig.parse(toml), containerd2);
    }

    private static Finding only(List<Finding> findings, Finding.Level level) {
        List<Finding> l = findings.stream().filter(f -> f.level() == level).toList();
        assertEquals(1, l.size(), "one " + level + " finding expected: " + findings);
        return l.getFirst();
    }

    @Test
    void v3SnippetIsCompleteForContainerd2() throws Exception {
        List<Finding> f = check(snippet(3), true);
        assertTrue(ConfigCheck.passes(f), f.toString());
        assertTrue(f.stream().anyMatch(x -> x.level() == Finding.Level.OK && x.item().contains("unpack_config")), f.toString());
        assertTrue(f.stream().anyMatch(x -> x.level() == Finding.Level.OK && x.item().endsWith("exports.root")), f.toString());
        // CRI is left on overlayfs as shipped: a warning, not a failure
        assertTrue(only(f, Finding.Level.WARN).text().contains("[plugins.\"io.containerd.cri.v1.images\"]"), f.toString());
    }

    @Test
    void v3SnippetWithCriLinesHasNoWarnings() throws Exception {
        List<Finding> f = check(withCri(snippet(3)), true);
        assertTrue(ConfigCheck.passes(f), f.toString());
        assertTrue(f.stream().noneMatch(x -> x.level() == Finding.Level.WARN), f.toString());
        assertTrue(f.stream().anyMatch(x -> x.item().equals("runc BinaryName") && x.text().contains("through dedup-runc")), f.toString());
    }

    @Test
    void v2SnippetIsCompleteForContainerd1() throws Exception {
        List<Finding> f = check(withCri(snippet(2)), false);
        assertTrue(ConfigCheck.passes(f), f.toString());
        assertTrue(f.stream().noneMatch(x -> x.level() == Finding.Level.WARN), f.toString());
        assertTrue(f.stream().noneMatch(x -> x.item().contains("exports") || x.item().contains("unpack_config")), "1.x needs neither: " + f);
    }

    @Test
    void v2SnippetUnderContainerd2LacksExportsAndUnpackConfig() throws Exception {
        List<Finding> f = check(snippet(2), true);
        assertFalse(ConfigCheck.passes(f));
        List<String> missing = f.stream().filter(x -> x.level() == Finding.Level.MISSING).map(Finding::item).toList();
        assertEquals(List.of("[proxy_plugins.dedup] exports", "[[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]"), missing);
    }

    @Test
    void missingProxyPlugin() throws Exception {
        for (int v : new int[] {2, 3}) {
            String toml = snippet(v).replace("[proxy_plugins.dedup]", "[proxy_plugins.other]");
            List<Finding> f = check(toml, v == 3);
            assertFalse(ConfigCheck.passes(f));
            Finding m = f.stream().filter(x -> x.level() == Finding.Level.MISSING).findFirst().orElseThrow();
            assertEquals("[proxy_plugins.dedup]", m.item());
            assertTrue(m.text().contains("address = \"/run/containerd/dedup-snapshotter.sock\""), m.text());
        }
    }

    @Test
    void missingExports() throws Exception {
        String toml = snippet(3).replaceAll("(?m)^\\s*exports = .*$", "");
        Finding m = only(check(toml, true), Finding.Level.MISSING);
        assertEquals("[proxy_plugins.dedup] exports", m.item());
        assertTrue(m.text().contains("exports = { root = \"/var/lib/dedup-snapshotter\", enable_remote_snapshot_annotations = \"true\" }"), m.text());
    }

    @Test
    void annotationsNotTheStringTrue() throws Exception {
        String toml = snippet(3).replace("enable_remote_snapshot_annotations = \"true\"", "enable_remote_snapshot_annotations = \"false\"");
        Finding m = only(check(toml, true), Finding.Level.MISSING);
        assertEquals("[proxy_plugins.dedup] exports.enable_remote_snapshot_annotations", m.item());
    }

    @Test
    void missingUnpackConfig() throws Exception {
        String toml = snippet(3).replaceAll("(?s)\\[\\[plugins.*?differ = \"walking\"\\n.*?differ = \"walking\"\\n", "");
        assertFalse(toml.contains("unpack_config]]"), toml);
        Finding m = only(check(toml, true), Finding.Level.MISSING);
        assertTrue(m.item().contains("unpack_config"), m.toString());
        assertTrue(m.text().contains("snapshotter = \"overlayfs\""), "says to keep overlayfs's entry: " + m.text());
    }

    @Test
    void unpackConfigWithoutOverlayfsWarns() throws Exception {
        String toml = snippet(3).replaceFirst("snapshotter = \"overlayfs\"", "snapshotter = \"native\"");
        List<Finding> f = check(toml, true);
        assertTrue(ConfigCheck.passes(f), f.toString());
        assertTrue(f.stream().anyMatch(x -> x.level() == Finding.Level.WARN && x.text().contains("no entry for overlayfs")), f.toString());
    }

    @Test
    void daemonNotAnsweringIsAWarning() throws Exception {
        ConfigCheck noDaemon = new ConfigCheck(Path.of("/x.sock"), Path.of("/x"), p -> false);
        List<Finding> f = noDaemon.check(ContainerdConfig.parse(snippet(3)), true);
        assertTrue(ConfigCheck.passes(f));
        assertTrue(f.stream().anyMatch(x -> x.item().equals("daemon") && x.text().startsWith("nothing answers at /run/containerd/dedup-snapshotter.sock")), f.toString());
    }

    /** containerd 2.x's config dump writes literal-string keys and puts the address into exports too. */
    @Test
    void readsContainerdsDumpFormat() throws Exception {
        String dump = """
                version = 4
                disabled_plugins = ['io.containerd.grpc.v1.cri']
                [plugins]
                  [plugins.'io.containerd.transfer.v1.local']
                    [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
                      platform = 'linux/amd64'
                      snapshotter = 'dedup'
                      differ = 'walking'
                    [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
                      platform = 'linux/amd64'
                      snapshotter = 'overlayfs'
                [proxy_plugins]
                  [proxy_plugins.dedup]
                    type = 'snapshot'
                    address = '/tmp/d.sock'
                    [proxy_plugins.dedup.exports]
                      address = '/tmp/d.sock'
                      enable_remote_snapshot_annotations = 'true'
                      root = '/tmp/d'
                """;
        List<Finding> f = check(dump, true);
        assertTrue(ConfigCheck.passes(f), f.toString());
        assertTrue(f.stream().noneMatch(x -> x.level() == Finding.Level.WARN), f.toString());
        assertTrue(f.stream().anyMatch(x -> x.item().equals("CRI") && x.text().startsWith("disabled")), f.toString());
    }

    @Test
    void containerdVersions() {
        ContainerdVersion v24 = ContainerdVersion.parse("containerd github.com/containerd/containerd/v2 2.4.2+unknown \n").orElseThrow();
        assertEquals(2, v24.major());
        assertEquals(4, v24.minor());
        assertTrue(v24.is2x());
        ContainerdVersion v16 = ContainerdVersion.parse("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3").orElseThrow();
        assertEquals("1.6.20~ds1", v16.text());
        assertFalse(v16.is2x());
        assertEquals(7, ContainerdVersion.parse("containerd containerd.io v1.7.27 05044ec0").orElseThrow().minor());
        assertTrue(ContainerdVersion.parse("containerd github.com/containerd/containerd/v2").isEmpty());
    }
}
