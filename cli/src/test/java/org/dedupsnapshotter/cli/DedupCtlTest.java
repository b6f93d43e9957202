package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.cli.containerd.ContainerdException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** dedupctl's command line without a daemon: what each flag means, usage errors, exit codes, --json. */
class DedupCtlTest {
    @TempDir
    Path dir;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
    private PrintStream oldOut, oldErr;

    @BeforeEach
    void capture() {
        oldOut = System.out;
        oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(oldOut);
        System.setErr(oldErr);
    }

    private String out() { return out.toString(StandardCharsets.UTF_8); }

    private String err() { return err.toString(StandardCharsets.UTF_8); }

    private static <T> T parsed(Class<T> type, String... args) {
        CommandLine cl = DedupCtl.commandLine();
        CommandLine.ParseResult r = cl.parseArgs(args);
        while (r.hasSubcommand()) r = r.subcommand();
        return type.cast(r.commandSpec().userObject());
    }

    @Test
    void addressIsTheDaemonsSocketBeforeOrAfterTheCommand() {
        assertEquals(Path.of("/a.sock"), parsed(DedupCtl.Stats.class, "--address", "/a.sock", "stats").socket());
        assertEquals(Path.of("/b.sock"), parsed(DedupCtl.Stats.class, "stats", "--address", "/b.sock").socket());
        assertEquals(Path.of("/b.sock"), parsed(DedupCtl.Stats.class, "--address", "/a.sock", "stats", "--address", "/b.sock").socket(),
                "the command's own wins");
        assertEquals(Path.of("/c.sock"), parsed(TraceCommand.Show.class, "--address", "/c.sock", "trace", "show", "sha256:x").socket());
    }

    @Test
    void containerdIsContainerdsSocketAndNamespaceItsNamespace() {
        Pull p = parsed(Pull.class, "pull", "--containerd", "/run/k3s/containerd.sock", "--namespace", "k8s.io", "--plain-http", "r/x:1");
        assertEquals(Path.of("/run/k3s/containerd.sock"), p.containerd);
        assertEquals("k8s.io", p.namespace);
        assertEquals("dedup", p.snapshotter);
        Pull d = parsed(Pull.class, "pull", "r/x:1");
        assertEquals(Path.of("/run/containerd/containerd.sock"), d.containerd);
        assertEquals("default", d.namespace);
        TraceCommand.Show t = parsed(TraceCommand.Show.class, "trace", "show", "--containerd", "/c.sock", "--namespace", "n", "img");
        assertEquals(Path.of("/c.sock"), t.containerd);
        Convert c = parsed(Convert.class, "convert", "--trace", "true", "--containerd", "/c.sock", "--address", "/d.sock", "a", "b");
        assertEquals(Path.of("/c.sock"), c.containerd);
        assertEquals(Path.of("/d.sock"), c.address);
        CheckConfig k = parsed(CheckConfig.class, "check-config", "--containerd-bin", "/usr/bin/containerd");
        assertEquals(Path.of("/usr/bin/containerd"), k.containerdBin);
    }

    @Test
    void pullAddressIsAUsageErrorNamingContainerd() {
        assertEquals(2, DedupCtl.run("pull", "--address", "/run/containerd/containerd.sock", "r/x:1"));
        assertTrue(err().contains("pull takes containerd's socket as --containerd SOCK"), err());
        assertEquals(2, DedupCtl.run("check-config", "--containerd", "/usr/bin/containerd"));
        assertTrue(err().contains("--containerd-bin PATH"), err());
    }

    @Test
    void usageErrorsExit2() {
        assertEquals(2, DedupCtl.run());
        assertEquals(2, DedupCtl.run("nosuch"));
        assertEquals(2, DedupCtl.run("stats", "--what"));
        assertEquals(2, DedupCtl.run("pull"));
        assertEquals(2, DedupCtl.run("pull", "--namespace"));
        assertEquals(2, DedupCtl.run("inspect"));
        assertEquals(2, DedupCtl.run("trace"));
        assertEquals(2, DedupCtl.run("config"));
        assertEquals(2, DedupCtl.run("convert", "a"));
        assertEquals(2, DedupCtl.run("convert", "--trace-seconds", "3", "a", "b"));
        assertTrue(err().contains("--trace-seconds: only with --trace"), err());
        assertEquals(2, DedupCtl.run("convert", "--platform", "linux/arm64", "--all-platforms", "a", "b"));
        assertEquals(2, DedupCtl.run("convert", "--chunk-size", "3x", "a", "b"));
        assertEquals(2, DedupCtl.run("bound", "--chunk-size", "3x", "l.tar"));
        assertEquals(2, DedupCtl.run("probe-mounts", "--count", "many"));
        assertEquals(2, DedupCtl.run("completion", "zsh"));
        assertEquals(2, DedupCtl.run("--address", "/nonexistent.sock", "aot-training"), "only in the build's training run");
        assertEquals("", out(), "usage errors go to stderr");
    }

    @Test
    void noDaemonExits3WithThePlainMessage() {
        assertEquals(3, DedupCtl.run("--address", dir.resolve("none.sock").toString(), "stats"));
        assertTrue(err().contains("the daemon is not running (no socket at " + dir.resolve("none.sock") + ")"), err());
        assertEquals(3, DedupCtl.run("gc", "--address", dir.resolve("none.sock").toString()));
        assertEquals(DedupCtl.NOT_RUNNING, DedupCtl.exitCode(ContainerdException.of("Get", new StatusRuntimeException(Status.UNAVAILABLE))));
        assertEquals(DedupCtl.FAILED, DedupCtl.exitCode(ContainerdException.of("Get", new StatusRuntimeException(Status.NOT_FOUND))));
    }

    @Test
    void helpAndVersionNeedNoDaemon() {
        assertEquals(0, DedupCtl.run("--address", "/nonexistent.sock", "--help"));
        assertTrue(out().startsWith("Usage: dedupctl"), out());
        assertTrue(out().contains("Exit codes:"), out());
        out.reset();
        assertEquals(0, DedupCtl.run("--version"));
        assertTrue(out().startsWith("dedupctl "), out());
        out.reset();
        assertEquals(0, DedupCtl.run("convert", "--help"));
        assertTrue(out().contains("--trace=CMD"), out());
    }

    @Test
    void completionIsABashScriptOfTheVisibleCommands() {
        assertEquals(0, DedupCtl.run("completion", "bash"));
        assertTrue(out().contains("complete -F _complete_dedupctl"), out());
        assertTrue(out().contains("check-config") && out().contains("--containerd-bin"), "commands and their flags");
        assertFalse(out().contains("aot-training"));
    }

    @Test
    void onlyTheCommandRunIsBuilt() {
        assertEquals("stats", DedupCtl.commandName(new String[] {"--address", "/x", "stats", "--json"}));
        assertEquals("pull", DedupCtl.commandName(new String[] {"--address=/x", "pull"}));
        assertNull(DedupCtl.commandName(new String[] {"--help"}));
        assertNull(DedupCtl.commandName(new String[] {}));
        assertEquals(1, DedupCtl.commandLine(new String[] {"stats"}).getSubcommands().size());
        assertTrue(DedupCtl.commandLine(new String[] {"help", "stats"}).getSubcommands().size() > 10);
    }

    @Test
    void jsonWithoutADaemon() throws Exception {
        Path cfg = Files.writeString(dir.resolve("ok.json"), "{\"chunkSize\": \"4MiB\"}");
        assertEquals(0, DedupCtl.run("config", "check", "--json", cfg.toString()));
        JsonNode ok = DedupCtl.Json.MAPPER.readTree(out());
        assertTrue(ok.get("valid").asBoolean(), out());
        out.reset();
        Path bad = Files.writeString(dir.resolve("bad.json"), "{\"chunksize\": \"4MiB\"}");
        assertEquals(1, DedupCtl.run("config", "check", "--json", bad.toString()));
        JsonNode no = DedupCtl.Json.MAPPER.readTree(out());
        assertFalse(no.get("valid").asBoolean());
        assertTrue(no.get("error").asText().contains("chunksize"), out());
        out.reset();

        Path src = Files.createDirectories(dir.resolve("src"));
        Files.writeString(src.resolve("a"), "hello");
        Path tar = dir.resolve("l.tar");
        assertEquals(0, new ProcessBuilder("tar", "-C", src.toString(), "-cf", tar.toString(), ".").start().waitFor());
        assertEquals(0, DedupCtl.run("bound", "--json", tar.toString()));
        JsonNode b = DedupCtl.Json.MAPPER.readTree(out());
        assertEquals(1, b.get("files").asInt(), out());
        assertEquals(4096, b.get("boundBytes").asLong(), out());
        out.reset();
        assertEquals(0, DedupCtl.run("bound", tar.toString()));
        assertTrue(out().startsWith("bound: layers=1 files=1 logical=5 chunks=1 unique=1 bytes=4096"), out());
    }

    @Test
    void probeMountsResultPrintsAsBefore() throws Exception {
        MountsProbe.Result r = new MountsProbe.Result(200, 0.5, 1.25, 2);
        assertEquals("mounts: n=200 p50=0.50ms p99=1.25ms max=2.00ms", r.toString());
        assertEquals(1.25, DedupCtl.Json.MAPPER.readTree(DedupCtl.Json.MAPPER.writeValueAsString(r)).get("p99Ms").asDouble());
    }

    @Test
    void plainStatsLsAndGcRunWithoutPicocliAndMeanTheSame() {
        String a = dir.resolve("a.sock").toString(), b = dir.resolve("b.sock").toString();
        assertEquals(3, DedupCtl.plain(new String[] {"--address", a, "stats"}));
        assertTrue(err().contains("dedupctl stats: the daemon is not running (no socket at " + a + ")"), err());
        err.reset();
        assertEquals(3, DedupCtl.plain(new String[] {"--address=" + a, "ls", "--json", "--address", b}));
        assertTrue(err().contains("dedupctl ls: the daemon is not running (no socket at " + b + ")"), "the command's own wins: " + err());
        err.reset();
        assertEquals(3, DedupCtl.plain(new String[] {"gc", "--address=" + b}));
        assertTrue(err().contains("(no socket at " + b + ")"), err());
        // anything but the plain forms is picocli's: help, other commands and options, repeats, missing values
        for (String[] other : new String[][] {{"stats", "--help"}, {"stats", "--json", "--json"}, {"--address", a, "--address", b, "stats"},
                {"stats", "--address"}, {"stats", "--address", "--json"}, {"--address=", "stats"}, {"inspect", "k"}, {"stats", "x"}, {"--json", "stats"},
                {"compact"}, {}, {"--version"}})
            assertNull(DedupCtl.plain(other), String.join(" ", other));
        assertEquals(2, DedupCtl.run("stats", "--json", "--json"), "picocli's usage error, as before");
        assertEquals(2, DedupCtl.run("--address", a, "--address", b, "stats"));
    }

    @Test
    void statsPrintsWhatDatabindPrinted() throws Exception {
        String json = "{\"snapshots\":{\"view\":0,\"active\":1,\"committed\":4},\"mountedLayers\":4,\"poolReads\":\"auto\","
                + "\"directIo\":\"on \\\"x\\\" \\u00e9\",\"logicalBytes\":322687056,\"big\":12345678901234567890,\"dedupRatio\":1.838,"
                + "\"compressionRatio\":0.0,\"none\":null,\"flag\":true,\"list\":[1,\"two\",[],{}],"
                + "\"lazy\":{\"enabled\":true,\"fetchedDemandBytes\":0},"
                + "\"ksm\":{\"supported\":true,\"running\":true,\"pagesShared\":3,\"pagesSharing\":9,\"savedBytes\":24576,"
                + "\"generalProfitBytes\":100,\"fullScans\":2,\"containers\":[{\"container\":\"default/c1\",\"processes\":2,"
                + "\"mergingPages\":4,\"mergingBytes\":16384,\"profitBytes\":99}]}}";
        JsonNode tree = DedupCtl.Json.MAPPER.readTree(json);
        Object parsed = JsonText.parse(json);
        assertEquals(DedupCtl.Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(tree), JsonText.pretty(parsed), "stats --json");
        var it = tree.fields();
        for (var e : JsonText.asObject(parsed).entrySet()) assertEquals(it.next().getValue().toString(), JsonText.compact(e.getValue()), e.getKey());
        String human = DedupCtl.human(JsonText.asObject(parsed));
        assertTrue(human.startsWith("snapshots:       {\"view\":0,\"active\":1,\"committed\":4}\nmountedLayers:   4\npoolReads:       \"auto\"\n"), human);
        assertTrue(human.contains("\ndedupRatio:      1.838\n"), human);
        assertTrue(human.contains("\nksm:             running, saved 24576 bytes (pages_sharing 9, pages_shared 3, general_profit 100, full_scans 2)\n"), human);
        assertTrue(human.endsWith("  default/c1                                       2          16384             99"), human);
        assertEquals("ksm:             unsupported: no KSM", DedupCtl.human(JsonText.asObject(JsonText.parse(
                "{\"ksm\":{\"supported\":false,\"reason\":\"no KSM\"}}"))));
    }
}
