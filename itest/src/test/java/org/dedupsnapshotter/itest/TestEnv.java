package org.dedupsnapshotter.itest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;
import org.dedupsnapshotter.proto.admin.v1.CompactRequest;
import org.dedupsnapshotter.proto.admin.v1.StatsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;
import org.dedupsnapshotter.sys.Libc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A throwaway world for one test class: its own docker-registry on a free loopback port, its own containerd
 * (2.4 unless a test picks another release; private root, state and sockets, [proxy_plugins.dedup]) and our
 * daemon, all under one unique temp dir.
 * Closing it kills the tasks it made, stops only the processes it started, unmounts whatever is left below its
 * dir and deletes it, so a failed run never poisons the next.
 *
 * Why one class of this size: it is the tests' whole vocabulary for that world (start, restart, pull, run, read
 * the daemon's log, tear down); each method is a few lines over the processes it owns, and tests read better
 * calling one object than a handful.
 */
final class TestEnv implements AutoCloseable {
    static final Path TOP = Path.of(System.getProperty("dedup.top", "..")).toAbsolutePath().normalize();
    /** The shared tools (containerd-pull): DEDUP_SHARED as the Makefile finds it (scripts/shared-dir.sh), else ../shared. */
    static final Path SHARED = Path.of(System.getenv().getOrDefault("DEDUP_SHARED", TOP.resolveSibling("shared").toString()));
    static final String NS = "itest";
    /**
     * -Ddedup.itest.poolReads=buffered runs every daemon of the suite with config key poolReads "buffered" (decision 68)
     * unless its test's config names it; absent: the daemon's default.
     */
    static final String POOL_READS = System.getProperty("dedup.itest.poolReads", "");

    final Path dir;
    final Path dedupRoot, dedupSock, containerdSock;
    int registryPort;
    Proc registry, containerd, daemon;
    /** Extra flags for every daemon start (e.g. --config FILE). */
    final List<String> daemonArgs = new ArrayList<>();
    /** The containerd release this env runs (set before it starts). */
    Containerd release = Containerd.primary();
    /** The daemon launcher (an installed one, for install tests). */
    Path daemonBin = TOP.resolve("bin/dedup-snapshotter");
    private ManagedChannel channel;
    private EventLoopGroup group;
    private int daemonStarts;

    private TestEnv(Path dir) {
        this(dir, dir.resolve("dedup"));
    }

    private TestEnv(Path dir, Path dedupRoot) {
        this.dir = dir;
        this.dedupRoot = dedupRoot;
        this.dedupSock = dir.resolve("dedup.sock");
        this.containerdSock = dir.resolve("containerd.sock");
    }

    /** Only the daemon (for API-level tests). */
    static TestEnv daemonOnly() throws Exception {
        return daemonOnlyWith(List.of());
    }

    static TestEnv daemonOnlyWith(List<String> daemonArgs) throws Exception {
        return daemonOnlyWithConfig(null, daemonArgs);
    }

    /** Only the daemon, started with this config.json (kept in the env's dir, removed with it). */
    static TestEnv daemonOnlyWithConfig(String configJson) throws Exception {
        return daemonOnlyWithConfig(configJson, List.of());
    }

    private static TestEnv daemonOnlyWithConfig(String configJson, List<String> daemonArgs) throws Exception {
        TestEnv e = new TestEnv(Files.createTempDirectory("dedup-itest-"));
        e.daemonArgs.addAll(daemonArgs);
        try {
            e.useConfig(configJson);
            e.startDaemon();
            return e;
        } catch (Exception ex) {
            e.close();
            throw ex;
        }
    }

    /** The daemon is to start with --config of this JSON, written into the env's dir; null: no config file. */
    private void useConfig(String configJson) throws IOException {
        if (!POOL_READS.isEmpty()) {
            var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
            var obj = (com.fasterxml.jackson.databind.node.ObjectNode) mapper.readTree(configJson == null ? "{}" : configJson);
            if (!obj.has("poolReads")) obj.put("poolReads", POOL_READS);
            configJson = mapper.writeValueAsString(obj);
        }
        if (configJson == null) return;
        Path cfg = Files.writeString(dir.resolve("daemon-config.json"), configJson);
        daemonArgs.addAll(List.of("--config", cfg.toString()));
    }

    /** Only a registry (for registry-client tests). */
    static TestEnv registryOnly() throws Exception {
        TestEnv e = new TestEnv(Files.createTempDirectory("dedup-itest-"));
        try {
            e.startRegistry();
            return e;
        } catch (Exception ex) {
            e.close();
            throw ex;
        }
    }

    /** Registry, containerd and daemon. */
    static TestEnv full() throws Exception {
        return full(null);
    }

    interface RootMaker { Path make(Path envDir) throws Exception; }

    /** Registry, containerd and daemon; rootMaker prepares the daemon's root inside the env dir (e.g. a small filesystem). */
    static TestEnv full(RootMaker rootMaker) throws Exception {
        return full(rootMaker, List.of());
    }

    static TestEnv full(RootMaker rootMaker, List<String> daemonArgs) throws Exception {
        return full(rootMaker, daemonArgs, null);
    }

    static TestEnv full(RootMaker rootMaker, List<String> daemonArgs, Path daemonBin) throws Exception {
        return full(rootMaker, daemonArgs, daemonBin, null);
    }

    /** Registry, containerd and daemon, the daemon started with this config.json (kept in the env's dir, removed with it). */
    static TestEnv fullWithConfig(String configJson) throws Exception {
        return full(null, List.of(), null, configJson);
    }

    /** Registry, the given containerd release and daemon. */
    static TestEnv fullOn(Containerd release) throws Exception {
        return full(null, List.of(), null, null, release);
    }

    private static TestEnv full(RootMaker rootMaker, List<String> daemonArgs, Path daemonBin, String configJson) throws Exception {
        return full(rootMaker, daemonArgs, daemonBin, configJson, Containerd.primary());
    }

    private static TestEnv full(RootMaker rootMaker, List<String> daemonArgs, Path daemonBin, String configJson, Containerd release)
            throws Exception {
        Path d = Files.createTempDirectory("dedup-itest-");
        TestEnv e;
        try {
            e = rootMaker == null ? new TestEnv(d) : new TestEnv(d, rootMaker.make(d));
            e.release = release;
            e.daemonArgs.addAll(daemonArgs);
            if (daemonBin != null) e.daemonBin = daemonBin;
            e.useConfig(configJson);
        } catch (Exception ex) {
            for (String m : mountsUnder(d)) Libc.umount2(m, Libc.MNT_DETACH);
            throw ex;
        }
        try {
            e.startDaemon();
            e.startRegistry();
            e.startContainerd();
            return e;
        } catch (Exception ex) {
            e.close();
            throw ex;
        }
    }

    /**
     * A node of several in one test: containerd and the daemon (started with this config.json) in a dir of its own
     * under parent, no registry (the test runs its own, e.g. {@link LocalRegistry}).
     */
    static TestEnv node(Path parent, String configJson) throws Exception {
        TestEnv e = new TestEnv(Files.createTempDirectory(parent, "node-"));
        try {
            e.useConfig(configJson);
            e.startDaemon();
            e.startContainerd();
            return e;
        } catch (Exception ex) {
            e.close();
            throw ex;
        }
    }

    /**
     * Opt-in: containerd's CRI plugin, off unless a test sets this; it gives the TOML of the plugin's section (it may
     * name the registry's port, known once the registry runs).
     */
    Function<TestEnv, String> criConfig;

    /** Registry, the given containerd release with its CRI plugin configured by criConfig, and the daemon. */
    static TestEnv fullWithCri(Containerd release, Function<TestEnv, String> criConfig) throws Exception {
        TestEnv e = new TestEnv(Files.createTempDirectory("dedup-itest-"));
        e.release = release;
        e.criConfig = criConfig;
        try {
            e.startDaemon();
            e.startRegistry();
            e.startContainerd();
            return e;
        } catch (Exception ex) {
            e.close();
            throw ex;
        }
    }

    String registry() { return "127.0.0.1:" + registryPort; }

    /** The config file bin/dedup-runc reads under this env's containerd (absent until a test writes it). */
    Path nodeConfig() { return dir.resolve("node-config.json"); }

    /** Per mount point of an EROFS mount under the daemon's root, the super options of each mount stacked there, oldest first. */
    Map<String, List<String>> erofsMounts() throws IOException {
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            int dash = Arrays.asList(f).indexOf("-");
            if (f[4].startsWith(dedupRoot + "/") && f[dash + 1].equals("erofs")) out.computeIfAbsent(f[4], k -> new ArrayList<>()).add(f[dash + 3]);
        }
        return out;
    }

    /**
     * Restarts the daemon to die by SIGKILL at crash point step during `dedupctl compact --wait`, checks that it did,
     * and starts it again (the crash tests of compaction).
     */
    void compactUntilCrash(String step) throws Exception {
        assertEquals(143, stopDaemon());
        startDaemon(Map.of("DEDUP_CRASH_AT", step));
        Proc.Result r = dedupctl("compact", "--wait");
        assertNotEquals(0, r.code(), r.out());
        assertTrue(daemon.process.waitFor(30, TimeUnit.SECONDS), "the daemon did not die at its crash point");
        assertEquals(137, daemon.process.exitValue(), "the daemon died, but not by SIGKILL at the crash point:\n" + daemon.logTail());
        assertTrue(Files.readString(daemon.log).contains("crash point"), daemon.logTail());
        startDaemon();
    }

    // ------------------------------------------------------------------ processes

    void startDaemon() throws Exception {
        startDaemon(Map.of());
    }

    /** Starts the daemon with extra environment (e.g. DEDUP_CRASH_AT for crash tests). */
    void startDaemon(Map<String, String> environment) throws Exception {
        daemonStarts++;
        daemon = Proc.start("dedup-snapshotter", dir.resolve("daemon-" + daemonStarts + ".log"),
                Stream.concat(Stream.of(daemonBin.toString(), "--root", dedupRoot.toString(),
                        "--address", dedupSock.toString()), daemonArgs.stream()).toList(),
                environment);
        waitForSocket(daemon, dedupSock, Duration.ofSeconds(60));
    }

    /** bin/dedupctl with no daemon address (convert, pull: commands that talk to registries and containerd). */
    static Proc.Result cli(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(TOP.resolve("bin/dedupctl").toString()));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(10), cmd);
    }

    /** bin/dedupctl against this daemon. */
    Proc.Result dedupctl(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(TOP.resolve("bin/dedupctl").toString(), "--address", dedupSock.toString()));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(10), cmd);
    }

    /** dedupctl fsck --verify-data must find nothing wrong. */
    void assertFsckClean() throws Exception {
        Proc.Result r = dedupctl("fsck", "--verify-data");
        if (r.code() != 0) throw new AssertionError("fsck --verify-data is not clean:\n" + r.out() + "\n" + daemon.logTail());
    }

    /** Bytes allocated on disk under p (du); under a daemon root, once its trash has been emptied. */
    static long du(Path p) throws Exception {
        Path trash = p.resolve("trash");
        for (int i = 0; i < 300 && Files.isDirectory(trash); i++) {
            try (var entries = Files.list(trash)) {
                if (entries.findAny().isEmpty()) break;
            }
            Thread.sleep(100);
        }
        // pool-lazy is a bind mount of the pool's directory (the lazy loader's watched path): du would count the pool twice
        Proc.Result r = Proc.run(Duration.ofMinutes(2), List.of("du", "-s", "-x", "--block-size=1", "--exclude=" + p.resolve("pool-lazy"), p.toString()))
                .orThrow("du");
        return Long.parseLong(r.out().trim().split("\\s+")[0]);
    }

    void startRegistry() throws Exception {
        registryPort = freePort();
        startRegistryOnPort();
    }

    /** Stops the registry (kill -9: a registry that vanishes mid-read). */
    void stopRegistry() throws InterruptedException { registry.kill9(); }

    /** Starts the registry again, on the same port with the same storage. */
    void restartRegistry() throws Exception { startRegistryOnPort(); }

    /** A docker config directory of the test's own (what DOCKER_CONFIG names), holding json as its config.json. */
    Path dockerConfig(String name, String json) throws IOException {
        Path d = Files.createDirectories(dir.resolve("docker-config-" + name));
        Files.writeString(d.resolve("config.json"), json);
        return d;
    }

    private void startRegistryOnPort() throws Exception {
        registry = DockerRegistry.start("docker-registry", dir.resolve("registry.yml"), dir.resolve("registry.log"), registryPort,
                DockerRegistry.config(dir.resolve("registry"), registryPort, ""));
    }

    void startContainerd() throws Exception {
        Path cfg = dir.resolve("containerd.toml");
        String extra = criConfig == null ? "" : criConfig.apply(this);
        Files.writeString(cfg, release.isV2() ? ContainerdConfig.v3(this, criConfig != null, extra) : ContainerdConfig.v2(this, criConfig != null, extra));
        // bin/dedup-runc (started by containerd's shims) reads its node policy from this file, not /etc
        // its own shim first on PATH: containerd 2.x finds containerd-shim-runc-v2 there (1.6's is Debian's, in /usr/bin)
        containerd = Proc.start("containerd", dir.resolve("containerd.log"), List.of(release.bin("containerd").toString(), "--config", cfg.toString()),
                Map.of("DEDUP_SNAPSHOTTER_CONFIG", nodeConfig().toString(), "PATH", release.binDir() + ":" + System.getenv("PATH")));
        waitForSocket(containerd, containerdSock, Duration.ofSeconds(60));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (ctrResult("version").code() != 0) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("containerd does not answer:\n" + containerd.logTail());
            Thread.sleep(200);
        }
    }

    /**
     * After a daemon restart containerd's proxy client is still in gRPC reconnect backoff (containerd caps
     * it at 3 s) and fails calls fast until it redials. Waits until a call containerd forwards to us (Mounts of
     * an existing snapshot key) succeeds; returns how long that took.
     */
    Duration awaitContainerdReconnect(String snapshotKey) throws Exception {
        long t0 = System.nanoTime();
        Path target = Files.createDirectories(dir.resolve("probe-target"));
        while (true) {
            Proc.Result r = ctrResult("snapshots", "--snapshotter", "dedup", "mounts", target.toString(), snapshotKey);
            if (r.code() == 0) return Duration.ofNanos(System.nanoTime() - t0);
            if (System.nanoTime() - t0 > TimeUnit.SECONDS.toNanos(30))
                throw new IllegalStateException("containerd did not reconnect to the daemon within 30 s: " + r.out());
            Thread.sleep(200);
        }
    }

    void killDaemon() throws InterruptedException {
        closeChannel();
        daemon.kill9();
    }

    int stopDaemon() throws InterruptedException {
        closeChannel();
        return daemon.terminate(Duration.ofSeconds(30));
    }

    private static void waitForSocket(Proc p, Path sock, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (Files.exists(sock)) {
                try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                    ch.connect(UnixDomainSocketAddress.of(sock));
                    return;
                } catch (IOException ignored) {
                    // not listening yet
                }
            }
            if (!p.alive()) throw new IllegalStateException(p.name + " exited (" + p.process.exitValue() + ") before listening:\n" + p.logTail());
            if (System.nanoTime() > deadline) throw new IllegalStateException(p.name + " did not listen on " + sock + ":\n" + p.logTail());
            Thread.sleep(50);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    // ------------------------------------------------------------------ clients

    /** This env's containerd's own ctr. */
    String ctrBin() { return release.bin("ctr").toString(); }

    Proc.Result ctrResult(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ctrBin(), "--address", containerdSock.toString(), "-n", NS));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(10), cmd);
    }

    String ctr(String... args) throws IOException, InterruptedException {
        return ctrResult(args).orThrow("ctr " + String.join(" ", args)).out();
    }

    /** ctr in another containerd namespace (each namespace has its own images and chain ids). */
    Proc.Result ctrIn(String namespace, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ctrBin(), "--address", containerdSock.toString(), "-n", namespace));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(10), cmd);
    }

    /**
     * A pull into dedup that passes the layers' annotations and CRI's labels to Prepare (so converted images are
     * pulled lazily), into a namespace: on containerd 2.x `ctr images pull` through the transfer service (dedup's
     * exports enable remote-snapshot annotations), its layer downloads counted in the registry's log; on 1.6
     * containerd's client.Pull with CRI's labels (the shared tool), which counts them itself.
     */
    Pull criPull(String namespace, String ref) throws Exception {
        if (release.isV2()) {
            RegistryLog log = new RegistryLog(dir.resolve("registry.log"));
            long mark = log.mark();
            Proc.Result r = ctrIn(namespace, "images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
            if (r.code() != 0) return new Pull(r, -1);
            Set<String> served = log.blobsServedSince(mark, "containerd/");
            return new Pull(r, (int) ImageRootfs.layerDigests(this, namespace, ref).stream().filter(served::contains).count());
        }
        Proc.Result r = Proc.run(Duration.ofMinutes(5), List.of(SHARED.resolve("containerd-pull/run.sh").toString(),
                "--address", containerdSock.toString(), "--namespace", namespace, "--snapshotter", "dedup", "--plain-http", ref));
        Matcher m = Pattern.compile("(\\d+) layer\\(s\\) downloaded").matcher(r.out());
        return new Pull(r, m.find() ? Integer.parseInt(m.group(1)) : -1);
    }

    /** A pull into dedup as CRI does it (with the layers' annotations and CRI's labels), in the tests' namespace. */
    Pull clientPull(String ref) throws Exception { return criPull(NS, ref); }

    /**
     * Mounts the image's root filesystem from the named snapshotter, read-only, at target (ImageRootfs: a view of the
     * image's chain id under a lease of its own). Not `ctr images mount`: in containerd 1.6 it ignores its
     * --snapshotter flag (it reads a global flag ctr does not have) and always unpacks into and mounts overlayfs.
     */
    AutoCloseable mountImage(String snapshotter, String ref, Path target) throws Exception {
        return ImageRootfs.mount(this, NS, snapshotter, ref, target);
    }

    /** The chain id of an image in this containerd (from its config's diff_ids, as containerd computes it). */
    String chainId(String ref) throws Exception { return ImageRootfs.chainIds(this, NS, ref).getLast(); }

    SnapshotsGrpc.SnapshotsBlockingStub snapshots() {
        return SnapshotsGrpc.newBlockingStub(channel()).withDeadlineAfter(5, TimeUnit.MINUTES);
    }

    /** dedupctl stats --json, straight from the admin service (a dedupctl process costs a JVM start). */
    JsonNode stats() throws IOException {
        String json = AdminGrpc.newBlockingStub(channel()).withDeadlineAfter(1, TimeUnit.MINUTES)
                .stats(StatsRequest.getDefaultInstance()).getJson();
        return new ObjectMapper().readTree(json);
    }

    /** dedupctl ls --json, straight from the admin service. */
    JsonNode listSnapshots() throws IOException {
        return new ObjectMapper().readTree(AdminGrpc.newBlockingStub(channel()).withDeadlineAfter(1, TimeUnit.MINUTES)
                .listSnapshots(org.dedupsnapshotter.proto.admin.v1.ListRequest.getDefaultInstance()).getJson());
    }

    /** dedupctl compact --wait --json, straight from the admin service. */
    JsonNode compact() throws IOException {
        return new ObjectMapper().readTree(AdminGrpc.newBlockingStub(channel()).withDeadlineAfter(10, TimeUnit.MINUTES)
                .compact(org.dedupsnapshotter.proto.admin.v1.CompactRequest.newBuilder().setWait(true).build()).getJson());
    }

    private EventLoopGroup group() {
        if (group == null) group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        return group;
    }

    private ManagedChannel channel() {
        if (channel == null) {
            channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(dedupSock.toString()))
                    .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group()).usePlaintext()
                    .maxInboundMessageSize(64 << 20).build();
        }
        return channel;
    }

    private void closeChannel() throws InterruptedException {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            channel = null;
        }
    }

    private void closeChannels() throws InterruptedException {
        closeChannel();
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            group = null;
        }
    }

    /** The daemon's layer mounts (under snapshots/; the pool's bind mount for lazy layers is not one). */
    List<String> layerMounts() throws IOException { return mountsUnder(dedupRoot.resolve("snapshots")); }

    /** Mount points at or below dir (deepest first). */
    static List<String> mountsUnder(Path p) throws IOException {
        String prefix = p + "/";
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String mp = line.split(" ")[4].replace("\\040", " ");
            if (mp.equals(p.toString()) || mp.startsWith(prefix)) out.add(mp);
        }
        out.sort((a, b) -> b.length() - a.length());
        return out;
    }

    // ------------------------------------------------------------------ teardown

    /** The daemon's fd holder (it outlives the daemon on purpose): its pid file names it. */
    long fdHolderPid() throws IOException {
        Path pidfile = dedupRoot.resolve("lazy/holder.pid");
        if (!Files.exists(pidfile)) return -1;
        return Long.parseLong(Files.readString(pidfile).strip().split(" ")[0]);
    }

    void killFdHolder() throws IOException {
        long pid = fdHolderPid();
        if (pid <= 0) return;
        try {
            if (Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe")).toString().endsWith("dedup-fdholder")) Libc.kill((int) pid, 9);
        } catch (IOException gone) {
            // it is not running
        }
    }

    /**
     * Every fd holder this env's daemons started, by pid: a dedup-fdholder whose pid file (its first argument) lies in
     * this env's root. The pid file names only the last one; one replaced or orphaned would outlive the test.
     */
    void killFdHolders() throws IOException {
        killFdHolder();
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.filter(x -> x.getFileName().toString().chars().allMatch(Character::isDigit)).toList()) {
                try {
                    if (!Files.readSymbolicLink(p.resolve("exe")).toString().endsWith("dedup-fdholder")) continue;
                    String[] argv = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).split("\0");
                    if (argv.length > 1 && Path.of(argv[1]).startsWith(dedupRoot)) Libc.kill(Integer.parseInt(p.getFileName().toString()), 9);
                } catch (IOException gone) {
                    // exited meanwhile, or not ours to read
                }
            }
        }
    }

    @Override
    public void close() throws Exception {
        List<Throwable> errors = new ArrayList<>();
        if (containerd != null && containerd.alive()) {
            try { // tasks first: shims outlive containerd otherwise
                for (String line : ctrResult("tasks", "ls", "-q").out().split("\n")) {
                    String id = line.strip();
                    if (id.isEmpty()) continue;
                    ctrResult("tasks", "kill", "-s", "SIGKILL", id);
                    for (int i = 0; i < 50 && ctrResult("tasks", "rm", "-f", id).code() != 0; i++) Thread.sleep(100);
                }
                for (String line : ctrResult("containers", "ls", "-q").out().split("\n"))
                    if (!line.isBlank()) ctrResult("containers", "rm", line.strip());
            } catch (Exception e) {
                errors.add(e);
            }
        }
        closeChannels();
        for (Proc p : new Proc[] {containerd, daemon, registry}) {
            if (p == null) continue;
            try {
                p.close();
            } catch (Exception e) {
                errors.add(e);
            }
        }
        try {
            killFdHolders();
        } catch (IOException e) {
            errors.add(e);
        }
        for (String m : mountsUnder(dir)) {
            try {
                Libc.umount2(m, Libc.MNT_DETACH);
            } catch (IOException e) {
                errors.add(e);
            }
        }
        if (System.getenv("DEDUP_ITEST_KEEP") == null) Proc.run(Duration.ofMinutes(2), List.of("rm", "-rf", "--one-file-system", dir.toString()));
        if (!errors.isEmpty()) {
            IllegalStateException e = new IllegalStateException("teardown of " + dir + " had problems");
            errors.forEach(e::addSuppressed);
            throw e;
        }
    }
}
