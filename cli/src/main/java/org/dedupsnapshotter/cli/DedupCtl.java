package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;
import org.dedupsnapshotter.proto.admin.v1.FsckRequest;
import org.dedupsnapshotter.proto.admin.v1.GcRequest;
import org.dedupsnapshotter.proto.admin.v1.ListRequest;
import org.dedupsnapshotter.proto.admin.v1.StatsRequest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** dedupctl [--address SOCKET] COMMAND: talks to the running daemon's admin service. */
public final class DedupCtl {
    static final String USAGE = """
            usage: dedupctl [--address SOCKET] COMMAND
                   dedupctl --help | --version
              stats [--json]      store figures
              ls [--json]         snapshots with logical, unique and shared bytes
              inspect KEY         one snapshot in detail (JSON)
              gc                  free chunks no layer references
              trace show|export|import IMAGE [FILE]
                                  an image's start-up trace (the chunks its containers read first)
              fsck [--verify-data] [--repair]
                                  check the store (exit 1 when problems remain)
              probe-mounts [--count N]
                                  client-side latency of the Snapshots Mounts call (on a temporary view)
              config check FILE   validate a config file
              check-config [--config /etc/containerd/config.toml] [--containerd PATH]
                                  check containerd's config for dedup (for that containerd's version): what
                                  is missing and where to add it (exit 1 when a required item is missing)
              bound [--chunk-size SIZE] LAYER...
                                  ideal disk use of chunk-level dedup for these layer tars (.tar or .tar.gz)
              convert [--plain-http] [--hosts-dir DIRS] [--chunk-size SIZE] [--platform P,... | --all-platforms]
                      [--trace-file FILE | --trace CMD ...] SRC DST
                                  make SRC (a registry reference, or oci:DIR[:TAG] for an OCI layout) lazily
                                  loadable and push it to the registry reference DST (needs no daemon); of an
                                  index, this host's image, or an index of the platforms named (or all); with a
                                  start-up trace (a file, or recorded here by running CMD: convert --help)
              pull [--plain-http] [--hosts-dir DIRS] [--platform P] [--address CONTAINERD_SOCK] [--namespace NS]
                   [--snapshotter NAME] REF
                                  pull REF into containerd (default /run/containerd/containerd.sock, namespace
                                  default, snapshotter dedup), converted layers lazily: what ctr images pull
                                  cannot do (talks to containerd, not to the daemon); of an index, this host's
                                  image (or P's)
              convert and pull read registries' hosts.toml, CAs and client certificates from DIRS as containerd
              does (default /etc/containerd/certs.d:/etc/docker/certs.d), credentials from the docker config,
              proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY""";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The build's version from the jar's manifest (Implementation-Version), and the Java runtime it runs on. */
    static String version(Class<?> c) {
        String v = c.getPackage().getImplementationVersion();
        return (v == null ? "(unpackaged build)" : v) + " (Java " + Runtime.version() + ")";
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        Path address = null;
        int i = 0;
        if (args.length >= 2 && args[0].equals("--address")) {
            address = Path.of(args[1]);
            i = 2;
        }
        if (i >= args.length) {
            System.err.println(USAGE);
            return 2;
        }
        String cmd = args[i];
        // answered without a daemon: an operator's first commands
        if (cmd.equals("--help") || cmd.equals("-h") || cmd.equals("help")) {
            System.out.println(USAGE);
            return 0;
        }
        if (cmd.equals("--version")) {
            System.out.println("dedupctl " + version(DedupCtl.class));
            return 0;
        }
        if (cmd.equals("config")) {
            if (args.length < i + 3 || !args[i + 1].equals("check")) {
                System.err.println(USAGE);
                return 2;
            }
            try {
                ConfigLoader.load(Path.of(args[i + 2]), true);
                System.out.println(args[i + 2] + ": ok");
                return 0;
            } catch (ConfigException e) {
                System.err.println(e.getMessage());
                return 1;
            }
        }
        if (cmd.equals("bound")) {
            long chunk = 4L << 20;
            int j = i + 1;
            if (j + 1 < args.length && args[j].equals("--chunk-size")) {
                try {
                    chunk = ConfigLoader.chunkSize(args[j + 1], "--chunk-size");
                } catch (ConfigException e) {
                    System.err.println("dedupctl bound: " + e.getMessage());
                    return 2;
                }
                j += 2;
            }
            try {
                var r = DedupBound.of(Arrays.stream(args, j, args.length).map(Path::of).toList(), chunk);
                System.out.printf("bound: layers=%d files=%d logical=%d chunks=%d unique=%d bytes=%d%n",
                        r.layers(), r.files(), r.logicalBytes(), r.chunks(), r.uniqueChunks(), r.boundBytes());
                return 0;
            } catch (IOException e) {
                System.err.println("dedupctl bound: " + e.getMessage());
                return 1;
            }
        }
        if (cmd.equals("convert")) return Convert.run(Arrays.copyOfRange(args, i + 1, args.length), address);
        if (cmd.equals("pull")) return Pull.run(Arrays.copyOfRange(args, i + 1, args.length));
        if (cmd.equals("check-config")) return CheckConfig.run(Arrays.copyOfRange(args, i + 1, args.length));
        if (address == null) {
            try {
                address = ConfigLoader.load(Config.DEFAULT_PATH, false).address();
            } catch (ConfigException e) {
                address = Config.defaults().address();
            }
        }
        if (!Files.exists(address)) {
            System.err.println("dedupctl: the daemon is not running (no socket at " + address + ")");
            return 1;
        }
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(address.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
        try {
            AdminGrpc.AdminBlockingStub admin = AdminGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS);
            switch (cmd) {
                case "stats" -> {
                    JsonNode n = JSON.readTree(admin.stats(StatsRequest.getDefaultInstance()).getJson());
                    boolean json = args.length > i + 1 && args[i + 1].equals("--json");
                    System.out.println(json ? JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n) : human(n));
                }
                case "ls" -> {
                    String json = admin.listSnapshots(ListRequest.getDefaultInstance()).getJson();
                    if (args.length > i + 1 && args[i + 1].equals("--json")) {
                        System.out.println(json);
                        return 0;
                    }
                    JsonNode arr = JSON.readTree(json);
                    System.out.printf("%-10s %-6s %12s %12s %12s %-11s  %s%n", "KIND", "ID", "LOGICAL", "UNIQUE", "SHARED", "LAZY", "NAME");
                    for (JsonNode s : arr)
                        System.out.printf("%-10s %-6d %12d %12d %12d %-11s  %s%n", s.get("kind").asText(), s.get("id").asLong(),
                                s.path("logical").asLong(s.get("size").asLong()), s.path("unique").asLong(0), s.path("shared").asLong(0),
                                s.path("proof").asText("-"), s.get("name").asText());
                    for (JsonNode s : arr)
                        if (s.path("proof").asText().equals("quarantined"))
                            System.out.println("quarantined " + s.get("name").asText() + ": " + s.path("proofNote").asText());
                }
                case "inspect" -> {
                    if (args.length <= i + 1) { System.err.println("dedupctl inspect: which snapshot? (dedupctl ls lists them)"); return 2; }
                    String key = args[i + 1];
                    JsonNode arr = JSON.readTree(admin.listSnapshots(ListRequest.getDefaultInstance()).getJson());
                    for (JsonNode s : arr)
                        if (s.get("name").asText().equals(key)) {
                            System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s));
                            return 0;
                        }
                    System.err.println("dedupctl inspect: no snapshot " + key);
                    return 1;
                }
                case "trace" -> {
                    return TraceCommand.run(admin, Arrays.asList(args).subList(i + 1, args.length));
                }
                case "gc" -> System.out.println("freed " + admin.gc(GcRequest.getDefaultInstance()).getFreedBytes() + " bytes");
                case "fsck" -> {
                    List<String> opts = Arrays.asList(args).subList(i + 1, args.length);
                    for (String o : opts) if (!o.equals("--verify-data") && !o.equals("--repair")) { System.err.println("dedupctl fsck: unknown option " + o); return 2; }
                    JsonNode n = JSON.readTree(admin.withDeadlineAfter(6, TimeUnit.HOURS).fsck(FsckRequest.newBuilder()
                            .setVerifyData(opts.contains("--verify-data")).setRepair(opts.contains("--repair")).build()).getJson());
                    System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n));
                    return n.get("clean").asBoolean() ? 0 : 1;
                }
                case "probe-mounts" -> {
                    int count = args.length > i + 2 && args[i + 1].equals("--count") ? Integer.parseInt(args[i + 2]) : 200;
                    System.out.println(MountsProbe.run(ch, count));
                }
                case "aot-training" -> { // the build's AOT training run (scripts/aot-train.sh); not in the usage
                    // it leaves aot-training-* snapshots behind: never against a node's daemon by mistake
                    if (!Boolean.getBoolean("dedup.aot.training")) {
                        System.err.println("dedupctl: aot-training runs only in the build's AOT training (scripts/aot-train.sh sets DEDUP_AOT_TRAIN)");
                        return 2;
                    }
                    AotTraining.run(ch);
                    for (String c : List.of("stats", "stats --json", "ls", "ls --json", "probe-mounts --count 100", "gc", "stats"))
                        if (run(("--address " + address + " " + c).split(" ")) != 0) return 1;
                }
                default -> {
                    System.err.println("dedupctl: unknown command " + cmd + "\n" + USAGE);
                    return 2;
                }
            }
            return 0;
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.UNAVAILABLE) {
                System.err.println("dedupctl: the daemon is not running (nothing answers on " + address + ")");
                return 1;
            }
            System.err.println("dedupctl: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
            return 1;
        } catch (Exception e) {
            System.err.println("dedupctl: " + e.getMessage());
            return 1;
        } finally {
            ch.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }

    private static String human(JsonNode n) {
        StringBuilder sb = new StringBuilder();
        n.fields().forEachRemaining(e -> {
            if (!e.getKey().equals("ksm")) sb.append(String.format("%-16s %s%n", e.getKey() + ":", e.getValue()));
        });
        JsonNode k = n.path("ksm");
        if (k.isMissingNode()) return sb.toString().stripTrailing();
        if (!k.path("supported").asBoolean()) return sb.append("ksm:             unsupported: ").append(k.path("reason").asText()).toString();
        sb.append(String.format("ksm:             %s, saved %d bytes (pages_sharing %d, pages_shared %d, general_profit %d, full_scans %d)%n",
                k.path("running").asBoolean() ? "running" : "stopped", k.path("savedBytes").asLong(), k.path("pagesSharing").asLong(),
                k.path("pagesShared").asLong(), k.path("generalProfitBytes").asLong(), k.path("fullScans").asLong()));
        if (k.path("containers").size() > 0) {
            sb.append(String.format("  %-40s %9s %14s %14s%n", "CONTAINER", "PROCESSES", "MERGING_BYTES", "PROFIT_BYTES"));
            for (JsonNode c : k.path("containers"))
                sb.append(String.format("  %-40s %9d %14d %14d%n", c.path("container").asText(), c.path("processes").asInt(),
                        c.path("mergingBytes").asLong(), c.path("profitBytes").asLong()));
        }
        return sb.toString().stripTrailing();
    }
}
