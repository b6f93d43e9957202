package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

/**
 * A kubelet's view of one TestEnv's containerd 2.x: its CRI plugins set to snapshotter "dedup", the test registry
 * reached over plain HTTP through a certs.d hosts dir, pods networked by Debian's CNI plugins (a bridge of its own
 * with a random /24, host-local addresses kept in the env's dir), and crictl to drive it. Closing it stops and
 * removes the pods it started and deletes its bridge; the env's close does the rest.
 */
final class CriNode implements AutoCloseable {
    static final String K8S = "k8s.io";
    static final Path CNI_BIN = Path.of("/usr/lib/cni");
    private static final ObjectMapper JSON = new ObjectMapper();

    final TestEnv env;
    final Path dir;
    final String bridge;
    private final List<String> pods = new ArrayList<>();

    private CriNode(TestEnv env, String bridge) {
        this.env = env;
        this.dir = env.dir.resolve("cri");
        this.bridge = bridge;
    }

    /**
     * Starts a TestEnv on containerd 2.x with its CRI plugins configured for dedup. localPull: set
     * disable_snapshot_annotations = false, which makes CRI pull with the local client.Pull (passing the layers'
     * annotations itself) instead of the transfer service (whose annotations come from dedup's exports).
     */
    static CriNode start(Containerd release, boolean localPull) throws Exception {
        if (!Files.isExecutable(CNI_BIN.resolve("bridge")) || !Files.isExecutable(CNI_BIN.resolve("host-local")))
            throw new IllegalStateException(CNI_BIN + " lacks the bridge and host-local CNI plugins: run scripts/install-deps.sh (containernetworking-plugins)");
        crictlBin();
        Random r = new Random();
        String bridge = "dd" + HexFormat.of().toHexDigits(r.nextInt()).substring(0, 8);
        String subnet = "10." + (100 + r.nextInt(150)) + "." + r.nextInt(256) + ".0/24";
        TestEnv env = TestEnv.fullWithCri(release, e -> criConfig(e, localPull, bridge, subnet));
        CriNode node = new CriNode(env, bridge);
        Files.writeString(node.dir.resolve("crictl.yaml"), """
                runtime-endpoint: unix://%1$s
                image-endpoint: unix://%1$s
                timeout: 300
                """.formatted(env.containerdSock));
        return node;
    }

    /** crictl as scripts/go-tools.sh builds it (version pinned in scripts/lib/go-versions.sh). */
    static Path crictlBin() { return GoTools.bin("crictl", GoTools.pinned("CRICTL_VERSION"), "crictl"); }

    /** The sandbox ("pause") image CRI pins and pulls for every pod: pushed by the test to its registry. */
    static String sandboxImage(TestEnv e) { return e.registry() + "/itest/pause:1"; }

    /**
     * The CRI plugins' TOML (containerd config v3); writes the CNI config and the registry's hosts.toml it names.
     * restrict_oom_score_adj: CRI gives sandboxes oom_score_adj -998, which needs CAP_SYS_RESOURCE; where the tests
     * run without it runc's init dies ("can't get final child's PID from pipe"), so CRI clamps to containerd's own.
     */
    private static String criConfig(TestEnv e, boolean localPull, String bridge, String subnet) {
        Path cri = e.dir.resolve("cri");
        try {
            Files.createDirectories(cri.resolve("cni"));
            Files.writeString(cri.resolve("cni/10-dedup-itest.conflist"), """
                    {"cniVersion": "1.0.0", "name": "%1$s", "plugins": [
                      {"type": "bridge", "bridge": "%1$s", "isGateway": true, "ipMasq": false,
                       "ipam": {"type": "host-local", "ranges": [[{"subnet": "%2$s"}]], "dataDir": "%3$s"}}]}
                    """.formatted(bridge, subnet, cri.resolve("ipam")));
            trustRegistry(cri, e.registry());
        } catch (IOException x) {
            throw new UncheckedIOException(x);
        }
        String images = "plugins.\"io.containerd.cri.v1.images\"";
        String runtime = "plugins.\"io.containerd.cri.v1.runtime\"";
        return """
                [%1$s]
                  snapshotter = "dedup"
                  disable_snapshot_annotations = %3$s
                  stats_collect_period = 1
                  [%1$s.pinned_images]
                    sandbox = "%4$s"
                  [%1$s.registry]
                    config_path = "%5$s"
                [%2$s]
                  netns_mounts_under_state_dir = true
                  restrict_oom_score_adj = true
                  [%2$s.cni]
                    bin_dirs = ["%6$s"]
                    conf_dir = "%7$s"
                """.formatted(images, runtime, !localPull, sandboxImage(e), cri.resolve("certs.d"), CNI_BIN, cri.resolve("cni"));
    }

    /** A hosts.toml that lets CRI pull from host:port over plain HTTP (CRI reads the hosts dir at each pull). */
    static void trustRegistry(Path criDir, String hostPort) throws IOException {
        Path d = Files.createDirectories(criDir.resolve("certs.d").resolve(hostPort));
        Files.writeString(d.resolve("hosts.toml"), """
                server = "http://%1$s"
                [host."http://%1$s"]
                  capabilities = ["pull", "resolve"]
                """.formatted(hostPort));
    }

    void trustRegistry(String hostPort) throws IOException { trustRegistry(dir, hostPort); }

    // ------------------------------------------------------------------ crictl

    Proc.Result crictlResult(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(crictlBin().toString(), "--config", dir.resolve("crictl.yaml").toString()));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(5), cmd);
    }

    String crictl(String... args) throws IOException, InterruptedException {
        return crictlResult(args).orThrow("crictl " + String.join(" ", args)).out().strip();
    }

    /** crictl started in the background (its output in a file of the env's dir). */
    Proc crictlInBackground(String name, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(crictlBin().toString(), "--config", dir.resolve("crictl.yaml").toString()));
        cmd.addAll(List.of(args));
        return Proc.start(name, dir.resolve(name + ".out"), cmd);
    }

    /** The container or pod ids in crictl's output (crictl prints its warnings to the same stream). */
    static List<String> ids(String out) {
        return out.lines().map(String::strip).filter(l -> l.matches("[0-9a-f]{64}")).toList();
    }

    JsonNode crictlJson(String... args) throws IOException, InterruptedException {
        String out = crictl(args);
        return JSON.readTree(out.substring(out.indexOf('{')));
    }

    // ------------------------------------------------------------------ pods

    /** crictl runp: a pod with its log directory in the env's dir; returns its id. */
    String runPod(String name) throws Exception {
        Path logs = Files.createDirectories(dir.resolve("logs/" + name));
        Path config = Files.writeString(dir.resolve("pod-" + name + ".json"), """
                {"metadata": {"name": "%1$s", "namespace": "itest", "uid": "uid-%1$s", "attempt": 0},
                 "log_directory": "%2$s", "linux": {}}
                """.formatted(name, logs));
        String id = ids(crictl("runp", config.toString())).getLast();
        pods.add(id);
        return id;
    }

    /** crictl create + start: a container of image running command in the pod; returns its id. */
    String runContainer(String pod, String name, String image, String... command) throws Exception {
        Path config = Files.writeString(dir.resolve("container-" + name + ".json"), """
                {"metadata": {"name": "%1$s"}, "image": {"image": "%2$s"}, "command": %3$s,
                 "log_path": "%1$s.log", "linux": {}}
                """.formatted(name, image, JSON.writeValueAsString(command)));
        String id = ids(crictl("create", "--no-pull", pod, config.toString(), dir.resolve("pod-" + podName(pod) + ".json").toString())).getLast();
        crictl("start", id);
        return id;
    }

    private String podName(String pod) throws Exception {
        return crictlJson("inspectp", pod).path("status").path("metadata").path("name").asText();
    }

    String podState(String pod) throws Exception { return crictlJson("inspectp", pod).path("status").path("state").asText(); }

    String containerState(String id) throws Exception { return crictlJson("inspect", id).path("status").path("state").asText(); }

    /** Waits until crictl logs of the container contain text; returns the logs. */
    String awaitLogs(String id, String text, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            String logs = crictl("logs", id);
            if (logs.contains(text)) return logs;
            if (System.nanoTime() > deadline) throw new AssertionError("the container's logs never showed \"" + text + "\": " + logs);
            Thread.sleep(50);
        }
    }

    /** crictl stopp + rmp of a pod this node started (its containers go with it). */
    void removePod(String pod) throws Exception {
        crictl("stopp", pod);
        crictl("rmp", pod);
        pods.remove(pod);
    }

    @Override
    public void close() throws Exception {
        try {
            if (env.containerd != null && env.containerd.alive())
                for (String pod : List.copyOf(pods)) {
                    crictlResult("stopp", pod);
                    crictlResult("rmp", "-f", pod);
                }
        } finally {
            try {
                Proc.run(Duration.ofSeconds(30), List.of("ip", "link", "del", bridge)); // absent if no pod ever ran: fine
            } finally {
                env.close();
            }
        }
    }
}
