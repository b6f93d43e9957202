package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.cli.connect.NotRunningException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.cli.containerd.ContainerdException;
import org.dedupsnapshotter.cli.progress.TerminalProgress;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.proto.admin.v1.FsckRequest;
import org.dedupsnapshotter.proto.admin.v1.CompactRequest;
import org.dedupsnapshotter.proto.admin.v1.GcRequest;
import org.dedupsnapshotter.proto.admin.v1.ListRequest;
import org.dedupsnapshotter.proto.admin.v1.StatsRequest;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * dedupctl [--address SOCKET] COMMAND: the daemon's admin API, and the commands that talk to registries and
 * containerd (convert, pull). Parsed by picocli (docs/decisions.md 53): one meaning per flag — --address is always the
 * dedup daemon's socket, --containerd containerd's, --namespace containerd's namespace — and the exit codes below.
 */
@Command(name = "dedupctl", versionProvider = DedupCtl.Version.class,
        description = "Talks to the dedup-snapshotter daemon (its admin API on its socket) and, for convert and pull, to "
                + "registries and containerd. `dedupctl COMMAND --help` explains a command.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
                "0:success",
                "1:the operation failed, or found problems (fsck, check-config, config check)",
                "2:usage error (unknown command or option, missing or bad value)",
                "3:cannot connect: the daemon (or containerd, for pull, trace and convert --trace) is not running or does not answer"},
        footer = {"", "--address is always the dedup daemon's socket (default: \"address\" in /etc/dedup-snapshotter/config.json, else "
                + "/run/containerd/dedup-snapshotter.sock); it may also follow a command. --containerd SOCK is containerd's socket, "
                + "--namespace containerd's namespace. --json prints a command's data as JSON. Shell completion: dedupctl completion bash."})
public final class DedupCtl implements Callable<Integer> {
    static final int OK = 0, FAILED = 1, USAGE = 2, NOT_RUNNING = 3;
    /** Jackson's mapper, made when first used: not for --help, pull, or a daemon that is not there. */
    static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    @Option(names = "--address", paramLabel = "SOCKET", description = "the dedup daemon's socket")
    Path address;
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
    boolean help;
    @Option(names = {"-V", "--version"}, versionHelp = true, description = "the version of dedupctl and of the Java runtime")
    boolean version;

    @Spec
    CommandSpec spec;

    /** The build's version from the jar's manifest (Implementation-Version), and the Java runtime it runs on. */
    static String version(Class<?> c) {
        String v = c.getPackage().getImplementationVersion();
        return (v == null ? "(unpackaged build)" : v) + " (Java " + Runtime.version() + ")";
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() { return new String[] {"dedupctl " + version(DedupCtl.class)}; }
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        Integer plain = plain(args);
        if (plain != null) return plain;
        return commandLine(args).execute(args);
    }

    /**
     * stats, ls and gc in their plain forms, `[--address S] CMD [--json] [--address S]` (or `--address=S`; each option
     * at most once on each side of the command), run without picocli: building its model of even the one command run
     * (annotation proxies, reflective field access: classes the AOT cache cannot hold) was ~65 ms of the ~0.29 s of
     * `dedupctl stats` (docs/decisions.md 78). The same command objects, the same daemon path and the same error
     * handling as picocli's execution; anything else (help, another option, a repeat, a missing or odd value) returns
     * null and goes to picocli, which runs it or names the error as before.
     */
    static Integer plain(String[] args) {
        Path top = null, own = null;
        String name = null;
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i], value = null;
            if (a.equals("--address")) {
                if (++i == args.length) return null;
                value = args[i];
            } else if (a.startsWith("--address=")) value = a.substring("--address=".length());
            if (value != null) {
                if (value.isEmpty() || value.startsWith("-") || (name == null ? top : own) != null) return null;
                if (name == null) top = Path.of(value);
                else own = Path.of(value);
            } else if (name == null && (a.equals("stats") || a.equals("ls") || a.equals("gc"))) name = a;
            else if (name != null && !json && a.equals("--json")) json = true;
            else return null;
        }
        if (name == null) return null;
        DaemonCommand c = switch (name) {
            case "stats" -> { Stats x = new Stats(); x.json = json; yield x; }
            case "ls" -> { Ls x = new Ls(); x.json = json; yield x; }
            default -> { Gc x = new Gc(); x.json = json; yield x; }
        };
        c.top = top;
        c.address = own;
        try {
            return c.call();
        } catch (Exception e) {
            return failed("dedupctl " + name, e);
        }
    }

    /** A command's exception (picocli's execution handler and the plain path): its message on stderr, the exit code. */
    static int failed(String command, Exception e) {
        PrintStream err = System.err;
        err.println(command + ": " + message(e));
        for (Throwable s : e.getSuppressed()) err.println("  also: " + s.getMessage());
        return exitCode(e);
    }

    /**
     * The commands, in the order of the usage. Built on demand: picocli reads a command's annotations by reflection
     * when it is added, which costs a fresh JVM milliseconds a class (annotation proxies are not in the AOT cache), so
     * a run adds the one it runs. A switch, not a map of constructor references: each of those is an invokedynamic
     * call site the JVM links at start-up.
     */
    static final List<String> COMMANDS = List.of("stats", "ls", "inspect", "gc", "compact", "fsck", "trace", "probe-mounts", "config", "check-config",
            "bound", "convert", "pull", "completion", "aot-training", "help");

    static Object newCommand(String name) {
        return switch (name) {
            case "stats" -> new Stats();
            case "ls" -> new Ls();
            case "inspect" -> new Inspect();
            case "gc" -> new Gc();
            case "compact" -> new Compact();
            case "fsck" -> new Fsck();
            case "trace" -> new TraceCommand();
            case "probe-mounts" -> new ProbeMounts();
            case "config" -> new ConfigCommand();
            case "check-config" -> new CheckConfig();
            case "bound" -> new Bound();
            case "convert" -> new Convert();
            case "pull" -> new Pull();
            case "completion" -> new Completion();
            case "aot-training" -> new AotTrainingCommand();
            case "help" -> new CommandLine.HelpCommand();
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** The whole command tree (help, completion, tests). */
    static CommandLine commandLine() {
        return commandLine(null);
    }

    /**
     * The command tree for args: the top level and the command args name, or every command when args name none, or
     * one picocli must know all of for (help, completion, a name to suggest a correction for).
     */
    static CommandLine commandLine(String[] args) {
        CommandLine cl = new CommandLine(new DedupCtl());
        String name = args == null ? null : commandName(args);
        if (name != null && COMMANDS.contains(name) && !name.equals("help") && !name.equals("completion")) cl.addSubcommand(name, newCommand(name));
        else for (String n : COMMANDS) cl.addSubcommand(n, newCommand(n));
        cl.setUsageHelpWidth(110);
        cl.setParameterExceptionHandler(DedupCtl::usageError);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> failed(cmd.getCommandSpec().qualifiedName(), e));
        return cl;
    }

    /** The first argument that is not a top-level option or its value: the command's name, or null. */
    static String commandName(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--address")) i++;
            else if (!args[i].startsWith("-")) return args[i];
            else if (!args[i].startsWith("--address=")) return null; // --help, --version, or a usage error: all commands
        }
        return null;
    }

    /** A usage error: what is wrong, the command's synopsis and where its help is; not the whole help (picocli's default). */
    static int usageError(ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        PrintStream err = System.err;
        err.println(cmd.getCommandSpec().qualifiedName() + ": " + e.getMessage());
        CommandLine.UnmatchedArgumentException.printSuggestions(e, new java.io.PrintWriter(err, true));
        err.print(cmd.getHelp().synopsis(0));
        err.println("`" + cmd.getCommandSpec().qualifiedName() + " --help` explains it.");
        return USAGE;
    }

    static String message(Throwable e) {
        if (e instanceof StatusRuntimeException s) return s.getStatus().getCode() + ": " + s.getStatus().getDescription();
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }

    /** 3 when a socket dedupctl needs has nothing behind it, else 1. */
    static int exitCode(Throwable e) {
        if (e instanceof NotRunningException) return NOT_RUNNING;
        if (e instanceof ContainerdException c && (c.code() == null || c.code() == Status.Code.UNAVAILABLE)) return NOT_RUNNING;
        return FAILED;
    }

    /** dedupctl alone: what it can do, on stderr, as a usage error. */
    @Override
    public Integer call() {
        spec.commandLine().usage(System.err);
        return USAGE;
    }

    /**
     * -h/--help on every command (picocli answers it before anything runs: no daemon needed). A superclass, not a
     * mixin: picocli reads it with the command, one annotation type fewer to make a proxy for at start-up.
     */
    abstract static class Base {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
        boolean help;
    }

    /** convert and pull: what they print while they work. */
    static final class ProgressOptions {
        @Option(names = "--json", description = "print the result as JSON on stdout (the per-layer lines go to stderr, no live line)")
        boolean json;
        @Option(names = {"-q", "--quiet"}, description = "print only the result")
        boolean quiet;
        @Option(names = "--no-progress", description = "no live byte-progress line (there is one only when stdout is a terminal)")
        boolean noProgress;

        TerminalProgress.Output output() { return TerminalProgress.forOptions(quiet, json, noProgress); }
    }

    static void printJson(Object value) throws IOException {
        System.out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(value));
    }

    /** A command of the daemon's admin API: --address here, or before the command, or the configured socket. */
    abstract static class DaemonCommand extends Base implements Callable<Integer> {
        @Option(names = "--address", paramLabel = "SOCKET", description = "the dedup daemon's socket (as before the command)")
        Path address;
        @Spec
        CommandSpec spec;
        /** The top-level --address when run without picocli ({@link #plain}); with picocli, its parse has it. */
        Path top;

        Path socket() {
            Path t = spec != null ? ((DedupCtl) spec.root().userObject()).address : top;
            return Daemon.socket(address != null ? address : t);
        }

        /** Checks before connecting (usage errors come before "not running"). */
        void check() {}

        @Override
        public final Integer call() throws Exception {
            check();
            Path socket = socket();
            try (Daemon d = Daemon.connect(socket)) {
                return run(d);
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() == Status.Code.UNAVAILABLE)
                    throw new NotRunningException("the daemon is not running (nothing answers on " + socket + ")");
                throw e;
            }
        }

        abstract int run(Daemon d) throws Exception;
    }

    @Command(name = "stats", description = "store figures: logical, stored and saved bytes, dedup ratio, chunks, lazy pull, KSM")
    static final class Stats extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;

        @Override
        int run(Daemon d) throws Exception {
            // jackson-core alone: no ObjectMapper to build (JsonText)
            Map<String, Object> n = JsonText.asObject(JsonText.parse(d.admin().stats(StatsRequest.getDefaultInstance()).getJson()));
            System.out.println(json ? JsonText.pretty(n) : human(n));
            return OK;
        }
    }

    @Command(name = "ls", description = "snapshots with logical, unique and shared bytes, and each lazy layer's proof")
    static final class Ls extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;

        @Override
        int run(Daemon d) throws Exception {
            String text = d.admin().listSnapshots(ListRequest.getDefaultInstance()).getJson();
            if (json) {
                System.out.println(text);
                return OK;
            }
            // jackson-core alone: no ObjectMapper to build (JsonText)
            List<Map<String, Object>> arr = new ArrayList<>();
            if (JsonText.parse(text) instanceof List<?> l)
                for (Object o : l) arr.add(JsonText.asObject(o));
            System.out.printf("%-10s %-6s %12s %12s %12s %-11s  %s%n", "KIND", "ID", "LOGICAL", "UNIQUE", "SHARED", "LAZY", "NAME");
            for (Map<String, Object> s : arr)
                System.out.printf("%-10s %-6d %12d %12d %12d %-11s  %s%n", JsonText.asText(s, "kind"), JsonText.asLong(s, "id"),
                        JsonText.asLong(s, s.containsKey("logical") ? "logical" : "size"), JsonText.asLong(s, "unique"), JsonText.asLong(s, "shared"),
                        s.get("proof") == null ? "-" : JsonText.asText(s, "proof"), JsonText.asText(s, "name"));
            for (Map<String, Object> s : arr)
                if (JsonText.asText(s, "proof").equals("quarantined"))
                    System.out.println("quarantined " + JsonText.asText(s, "name") + ": " + JsonText.asText(s, "proofNote"));
            return OK;
        }
    }

    @Command(name = "inspect", description = "one snapshot in detail (always JSON; --json is accepted)")
    static final class Inspect extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Parameters(paramLabel = "KEY", description = "the snapshot's name (dedupctl ls lists them)")
        String key;

        @Override
        int run(Daemon d) throws Exception {
            for (JsonNode s : Json.MAPPER.readTree(d.admin().listSnapshots(ListRequest.getDefaultInstance()).getJson()))
                if (s.get("name").asText().equals(key)) {
                    printJson(s);
                    return OK;
                }
            throw new IOException("no snapshot " + key);
        }
    }

    @Command(name = "gc", description = "free chunks no layer references (runs by itself after removals)")
    static final class Gc extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;

        @Override
        int run(Daemon d) throws Exception {
            long freed = d.admin().gc(GcRequest.getDefaultInstance()).getFreedBytes();
            if (json) System.out.println(JsonText.pretty(Map.of("freedBytes", freed)));
            else System.out.println("freed " + freed + " bytes");
            return OK;
        }
    }

    @Command(name = "compact", description = {"rewrite uncompressed layers into the compressed form (config compression)",
            "Layers with an active snapshot or view above them, and lazily pulled ones not yet complete and proven, are skipped (a later pass retries)."})
    static final class Compact extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Option(names = "--wait", description = "wait until every compactable layer is compacted and report the figures")
        boolean wait;

        @Override
        int run(Daemon d) throws Exception {
            JsonNode n = Json.MAPPER.readTree(d.admin().withDeadlineAfter(6, TimeUnit.HOURS)
                    .compact(CompactRequest.newBuilder().setWait(wait).build()).getJson());
            if (json) printJson(n);
            else if (!wait) System.out.println("compaction started (see the daemon's log)");
            else System.out.printf("compacted %d layers in %d ms: their data %d -> %d bytes; pool stored %d -> %d bytes (gc freed %d); skipped %d with snapshots above, %d lazy and not complete or not proven yet, %d failed%n",
                    n.get("compactedLayers").asInt(), n.get("millis").asLong(), n.get("layerBytesBefore").asLong(), n.get("layerBytesAfter").asLong(),
                    n.get("storedBytesBefore").asLong(), n.get("storedBytesAfter").asLong(), n.get("freedBytes").asLong(), n.get("skippedInUse").asInt(),
                    n.path("skippedLazy").asInt(), n.get("skippedOther").asInt());
            return OK;
        }
    }

    @Command(name = "fsck", description = {"check the store; exit 1 when problems remain.",
            "Prints the daemon's report as JSON (always: it is the one form; --json is accepted)."})
    static final class Fsck extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Option(names = "--verify-data", description = "also read every chunk and check its digest")
        boolean verifyData;
        @Option(names = "--repair", description = "repair what can be repaired")
        boolean repair;

        @Override
        int run(Daemon d) throws Exception {
            JsonNode n = Json.MAPPER.readTree(d.admin().withDeadlineAfter(6, TimeUnit.HOURS)
                    .fsck(FsckRequest.newBuilder().setVerifyData(verifyData).setRepair(repair).build()).getJson());
            printJson(n);
            return n.get("clean").asBoolean() ? OK : FAILED;
        }
    }

    @Command(name = "probe-mounts", description = "client-side latency of the Snapshots Mounts call (on a temporary view)")
    static final class ProbeMounts extends DaemonCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Option(names = "--count", paramLabel = "N", defaultValue = "200", description = "timed calls (default ${DEFAULT-VALUE})")
        int count;
        @Option(names = "--calls", paramLabel = "FILE", hidden = true,
                description = "write each timed call as a line: its start (CLOCK_MONOTONIC ns, as the JVM's -Xlog 'tn' decoration) and its duration in ns")
        Path calls;
        @Option(names = "--while-exists", paramLabel = "FILE", hidden = true,
                description = "run the probe again and again in this process for as long as FILE exists: one line per run that ended while it did (a warm client, as containerd's is)")
        Path whileExists;

        @Override
        void check() {
            if (count < 1) throw new ParameterException(spec.commandLine(), "--count needs at least 1 (got " + count + ")");
        }

        @Override
        int run(Daemon d) throws Exception {
            if (whileExists == null) {
                print(MountsProbe.run(d.channel(), count, calls));
                return OK;
            }
            for (int i = 0; Files.exists(whileExists); i++) {
                MountsProbe.Result r = MountsProbe.run(d.channel(), count, calls == null ? null : calls.resolveSibling(calls.getFileName() + "." + i));
                if (!Files.exists(whileExists)) break;
                print(r);
                System.out.flush();
            }
            return OK;
        }

        private void print(MountsProbe.Result r) throws IOException {
            if (json) printJson(r);
            else System.out.println(r);
        }
    }

    /** The build's AOT training run (scripts/aot-train.sh, decision 37): never a user's command. */
    @Command(name = "aot-training", hidden = true)
    static final class AotTrainingCommand extends DaemonCommand {
        @Override
        void check() {
            // it leaves aot-training-* snapshots behind: never against a node's daemon by mistake
            if (!Boolean.getBoolean("dedup.aot.training"))
                throw new ParameterException(spec.commandLine(), "aot-training runs only in the build's AOT training (scripts/aot-train.sh sets DEDUP_AOT_TRAIN)");
        }

        @Override
        int run(Daemon d) throws Exception {
            AotTraining.run(d.channel());
            Path socket = socket();
            // stats, ls and gc run without picocli and databind (plain); inspect and --help keep those in the cache for the
            // commands that use them (compact, fsck, convert, pull, config check, ...)
            for (String c : List.of("stats", "stats --json", "ls", "ls --json", "probe-mounts --count 100", "gc", "gc --json", "stats",
                    "inspect aot-training-2-upper", "stats --help"))
                if (DedupCtl.run(("--address " + socket + " " + c).split(" ")) != 0) return FAILED;
            return OK;
        }
    }

    @Command(name = "config", description = "the daemon's config file", subcommands = ConfigCheck.class)
    static final class ConfigCommand extends Base implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            throw new ParameterException(spec.commandLine(), "which? dedupctl config check FILE");
        }
    }

    @Command(name = "check", description = "validate a daemon config file without starting anything (exit 1 when it is not valid)")
    static final class ConfigCheck extends Base implements Callable<Integer> {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Parameters(paramLabel = "FILE")
        Path file;

        @Override
        public Integer call() throws IOException {
            try {
                ConfigLoader.load(file, true);
                if (json) printJson(Json.MAPPER.createObjectNode().put("file", file.toString()).put("valid", true));
                else System.out.println(file + ": ok");
                return OK;
            } catch (ConfigException e) {
                if (json) printJson(Json.MAPPER.createObjectNode().put("file", file.toString()).put("valid", false).put("error", e.getMessage()));
                else System.err.println(e.getMessage());
                return FAILED;
            }
        }
    }

    @Command(name = "bound", description = "ideal disk use of chunk-level dedup for these layer tars (.tar or .tar.gz); needs no daemon")
    static final class Bound extends Base implements Callable<Integer> {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Spec
        CommandSpec spec;
        @Option(names = "--chunk-size", paramLabel = "SIZE", defaultValue = "4MiB", description = "chunk size (default ${DEFAULT-VALUE})")
        String chunkSize;
        @Parameters(paramLabel = "LAYER", arity = "1..*")
        List<Path> layers;

        @Override
        public Integer call() throws IOException {
            long chunk;
            try {
                chunk = ConfigLoader.chunkSize(chunkSize, "--chunk-size");
            } catch (ConfigException e) {
                throw new ParameterException(spec.commandLine(), e.getMessage());
            }
            DedupBound.Result r = DedupBound.of(layers, chunk);
            if (json) printJson(r);
            else System.out.printf("bound: layers=%d files=%d logical=%d chunks=%d unique=%d bytes=%d%n",
                    r.layers(), r.files(), r.logicalBytes(), r.chunks(), r.uniqueChunks(), r.boundBytes());
            return OK;
        }
    }

    enum Shell { bash }

    @Command(name = "completion", description = {"print a shell completion script for dedupctl",
            "",
            "`source <(dedupctl completion bash)` for this shell; installed as /usr/share/bash-completion/completions/dedupctl "
                    + "by scripts/install.sh. zsh reads it after `autoload -U bashcompinit && bashcompinit`."})
    static final class Completion extends Base implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Parameters(paramLabel = "SHELL", description = "bash")
        Shell shell;

        @Override
        public Integer call() {
            System.out.print(AutoComplete.bash("dedupctl", spec.root().commandLine()));
            return OK;
        }
    }

    /** stats for a person: one line a figure (nested ones as compact JSON), KSM spelled out last. */
    static String human(Map<String, Object> n) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Object> e : n.entrySet())
            if (!e.getKey().equals("ksm")) sb.append(String.format("%-16s %s%n", e.getKey() + ":", JsonText.compact(e.getValue())));
        if (!n.containsKey("ksm")) return sb.toString().stripTrailing();
        Map<String, Object> k = JsonText.object(n, "ksm");
        if (!JsonText.asBoolean(k, "supported")) return sb.append("ksm:             unsupported: ").append(JsonText.asText(k, "reason")).toString();
        sb.append(String.format("ksm:             %s, saved %d bytes (pages_sharing %d, pages_shared %d, general_profit %d, full_scans %d)%n",
                JsonText.asBoolean(k, "running") ? "running" : "stopped", JsonText.asLong(k, "savedBytes"), JsonText.asLong(k, "pagesSharing"),
                JsonText.asLong(k, "pagesShared"), JsonText.asLong(k, "generalProfitBytes"), JsonText.asLong(k, "fullScans")));
        if (!JsonText.list(k, "containers").isEmpty()) {
            sb.append(String.format("  %-40s %9s %14s %14s%n", "CONTAINER", "PROCESSES", "MERGING_BYTES", "PROFIT_BYTES"));
            for (Object o : JsonText.list(k, "containers")) {
                Map<String, Object> c = JsonText.asObject(o);
                sb.append(String.format("  %-40s %9d %14d %14d%n", JsonText.asText(c, "container"), JsonText.asLong(c, "processes"),
                        JsonText.asLong(c, "mergingBytes"), JsonText.asLong(c, "profitBytes")));
            }
        }
        return sb.toString().stripTrailing();
    }
}
