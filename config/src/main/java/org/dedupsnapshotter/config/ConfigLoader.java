package org.dedupsnapshotter.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads config.json strictly: every key must be known and every value of its expected form, so a typo never
 * silently falls back to a default. Errors name the key (dotted path) and what was expected.
 */
public final class ConfigLoader {
    private static final Set<String> TOP_KEYS = Set.of("root", "address", "chunkSize", "mountBackend", "logLevel", "poolCap", "metrics", "ksm", "lazy", "erofsBuilder", "cri",
            "compression", "compressionLevel", "pclusterSize", "compressAt", "compactionLevel", "compactWhenIdle", "poolReads", "idlePageOut");
    private static final Set<String> CRI_KEYS = Set.of("listen", "containerd");
    private static final Set<String> LAZY_KEYS = Set.of("enabled", "readDeadline", "prefetchConcurrency", "prefetchBandwidth", "prefetchDelay", "plainHttp", "traceWindow", "readAhead", "registries", "hostsDir");
    private static final Set<String> KSM_KEYS = Set.of("containers", "runc", "daemonBuffers", "kernel");
    private static final Set<String> KSM_KERNEL_KEYS = Set.of("run", "pagesToScan", "sleepMillisecs", "advisorMode", "useZeroPages", "maxPageSharing");
    private static final Set<String> METRICS_KEYS = Set.of("address", "logInterval");
    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h)");
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9a-fA-F:]+\\]|[A-Za-z0-9.-]+):(\\d{1,5})");
    private static final Set<String> MOUNT_BACKENDS = Set.of("auto", "file", "loop");
    private static final Set<String> EROFS_BUILDERS = Set.of("native", "mkfs.erofs");
    private static final Set<String> COMPRESSIONS = Set.of("none", "lz4hc", "zstd");
    private static final Set<String> COMPRESS_AT = Set.of("commit", "compaction");
    private static final Set<String> POOL_READS = Set.of("direct", "buffered", "auto");
    private static final Set<String> IDLE_PAGE_OUT = Set.of("pages", "read-around", "off");
    private static final Set<String> LOG_LEVELS = Set.of("trace", "debug", "info", "warn", "error");
    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*(B|KiB|MiB|GiB|TiB)?");

    private ConfigLoader() {}

    /** Defaults overridden by the file; a missing file is an error only when required. */
    public static Config load(Path file, boolean required) throws ConfigException {
        if (!Files.exists(file)) {
            if (required) throw new ConfigException("config file " + file + " does not exist");
            return Config.defaults();
        }
        try {
            return parse(Files.readString(file), file.toString());
        } catch (IOException e) {
            throw new ConfigException("cannot read config file " + file + ": " + e.getMessage());
        }
    }

    public static Config parse(String json, String source) throws ConfigException {
        JsonNode tree;
        try {
            ObjectMapper mapper = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
            tree = mapper.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ConfigException(source + ": not valid JSON: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr()));
        }
        if (tree == null || !tree.isObject()) throw new ConfigException(source + ": expected a JSON object at the top level");
        ObjectNode obj = (ObjectNode) tree;
        for (Iterator<String> it = obj.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!TOP_KEYS.contains(k))
                throw new ConfigException(source + ": unknown key \"" + k + "\"; known keys: " + String.join(", ", TOP_KEYS.stream().sorted().toList()));
        }
        Config d = Config.defaults();
        Path root = absolutePath(obj, "root", d.root(), source);
        Path address = absolutePath(obj, "address", d.address(), source);
        long chunk = obj.has("chunkSize") ? size(obj.get("chunkSize"), "chunkSize", source) : d.chunkSize();
        if (Long.bitCount(chunk) != 1 || chunk < 4096 || chunk > (1L << 30))
            throw new ConfigException(source + ": key \"chunkSize\" must be a power of two between 4KiB and 1GiB, e.g. \"4MiB\"; got " + obj.get("chunkSize"));
        String backend = choice(obj, "mountBackend", d.mountBackend(), MOUNT_BACKENDS, source);
        String level = choice(obj, "logLevel", d.logLevel(), LOG_LEVELS, source);
        long cap = !obj.has("poolCap") || (obj.get("poolCap").isIntegralNumber() && obj.get("poolCap").asLong() == 0) ? 0 : size(obj.get("poolCap"), "poolCap", source);
        String builder = choice(obj, "erofsBuilder", d.erofsBuilder(), EROFS_BUILDERS, source);
        return new Config(root, address, chunk, backend, level, cap, metrics(obj.get("metrics"), source), ksm(obj.get("ksm"), source),
                lazy(obj.get("lazy"), source), builder, cri(obj.get("cri"), source), compression(obj, chunk, builder, source),
                choice(obj, "poolReads", d.poolReads(), POOL_READS, source), choice(obj, "idlePageOut", d.idlePageOut(), IDLE_PAGE_OUT, source));
    }

    private static Config.Compression compression(ObjectNode obj, long chunkSize, String builder, String source) throws ConfigException {
        Config.Compression d = Config.Compression.defaults();
        // mkfs.erofs writes uncompressed layers only: choosing it keeps the old default (a config naming it still starts)
        String algorithm = choice(obj, "compression", builder.equals("native") ? d.algorithm() : "none", COMPRESSIONS, source);
        // the level's range is the algorithm's (decision 60): LZ4 HC 1..12, ZSTD 1..22
        Integer given = algorithm.equals("zstd")
                ? intIn(obj, "", "compressionLevel", 1, 22, " (a ZSTD level with \"compression\": \"zstd\": 3 is as fast as LZ4 HC 2)", source)
                : intIn(obj, "", "compressionLevel", 1, 12, " (an LZ4 HC level: 4 is fast, 9 the classic default)", source);
        int level = given == null ? Config.Compression.defaultLevel(algorithm) : given;
        long pcluster = obj.has("pclusterSize") ? size(obj.get("pclusterSize"), "pclusterSize", source) : Config.Compression.defaultPclusterSize(algorithm, chunkSize);
        if (Long.bitCount(pcluster) != 1 || pcluster < (8 << 10) || pcluster > (1 << 20))
            throw new ConfigException(source + ": key \"pclusterSize\" must be a power of two between 8KiB and 1MiB, e.g. \"64KiB\"; got " + obj.get("pclusterSize"));
        String at = choice(obj, "compressAt", d.compressAt(), COMPRESS_AT, source);
        Integer givenCompaction = algorithm.equals("zstd")
                ? intIn(obj, "", "compactionLevel", 1, 22, " (a ZSTD level for compaction)", source)
                : intIn(obj, "", "compactionLevel", 1, 12, " (an LZ4 HC level for compaction)", source);
        Duration idle = obj.has("compactWhenIdle") ? duration(obj.get("compactWhenIdle"), "compactWhenIdle", "(0: off)", source)
                : algorithm.equals("none") ? Duration.ZERO : d.compactWhenIdle();
        // compaction is off the pull's path: a higher level than Commit's, unless the config names Commit's
        int compactionLevel = givenCompaction != null ? givenCompaction : given != null ? given : Config.Compression.COMPACTION_LEVEL;
        Config.Compression c = new Config.Compression(algorithm, level, (int) pcluster, at, compactionLevel, idle);
        if (!c.enabled()) {
            // compaction writes the compressed form: without one it has nothing to do, and a silent no-op would mislead
            for (String k : List.of("compressAt", "compactionLevel", "compactWhenIdle"))
                if (obj.has(k) && !(k.equals("compressAt") && at.equals("commit")) && !(k.equals("compactWhenIdle") && idle.isZero()))
                    throw new ConfigException(source + ": key \"" + k + "\" needs key \"compression\" (e.g. \"zstd\", the form layers are compacted into); got \"compression\": \""
                            + algorithm + "\"");
            return Config.Compression.none();
        }
        if (pcluster > chunkSize)
            throw new ConfigException(source + ": key \"pclusterSize\" (" + pcluster + ") must not exceed key \"chunkSize\" (" + chunkSize
                    + ") with \"compression\": \"" + algorithm + "\": pclusters restart at every chunk"
                    + (obj.has("compression") ? "" : " (compression is on by default: \"compression\": \"none\" turns it off)"));
        if (!builder.equals("native"))
            throw new ConfigException(source + ": key \"compression\": \"" + algorithm + "\" needs key \"erofsBuilder\": \"native\" (mkfs.erofs writes "
                    + "uncompressed layers only here); got \"erofsBuilder\": \"" + builder + "\"");
        return c;
    }

    private static Path absolutePath(ObjectNode obj, String key, Path dflt, String source) throws ConfigException {
        return absolutePath(obj, key, dflt, "", dflt, source);
    }

    private static Path absolutePath(ObjectNode obj, String key, Path dflt, String prefix, Path example, String source) throws ConfigException {
        if (!obj.has(key)) return dflt;
        JsonNode n = obj.get(key);
        if (!n.isTextual() || n.asText().isEmpty() || !n.asText().startsWith("/"))
            throw new ConfigException(source + ": key \"" + prefix + key + "\" must be an absolute path string, e.g. \"" + example + "\"; got " + n);
        return Path.of(n.asText()).normalize();
    }

    private static Config.Cri cri(JsonNode n, String source) throws ConfigException {
        Config.Cri d = Config.Cri.defaults();
        if (n == null) return d;
        ObjectNode o = object(n, "cri", CRI_KEYS, "{\"listen\": \"/run/dedup-snapshotter/cri.sock\"}", source);
        return new Config.Cri(absolutePath(o, "listen", null, "cri.", Path.of("/run/dedup-snapshotter/cri.sock"), source),
                absolutePath(o, "containerd", d.containerd(), "cri.", d.containerd(), source));
    }

    private static String choice(ObjectNode obj, String key, String dflt, Set<String> allowed, String source) throws ConfigException {
        return choice(obj, key, dflt, allowed, "", source);
    }

    private static String choice(ObjectNode obj, String key, String dflt, Set<String> allowed, String prefix, String source) throws ConfigException {
        if (!obj.has(key)) return dflt;
        JsonNode n = obj.get(key);
        String v = n.isTextual() ? n.asText().toLowerCase(Locale.ROOT) : null;
        if (v == null || !allowed.contains(v))
            throw new ConfigException(source + ": key \"" + prefix + key + "\" must be one of " + allowed.stream().sorted().toList() + "; got " + n);
        return v;
    }

    private static Config.Metrics metrics(JsonNode n, String source) throws ConfigException {
        Config.Metrics d = Config.Metrics.defaults();
        if (n == null) return d;
        if (!n.isObject()) throw new ConfigException(source + ": key \"metrics\" must be an object such as {\"address\": \"127.0.0.1:9466\", \"logInterval\": \"60s\"}; got " + n);
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!METRICS_KEYS.contains(k))
                throw new ConfigException(source + ": unknown key \"metrics." + k + "\"; known keys: metrics.address, metrics.logInterval");
        }
        String address = d.address();
        if (n.has("address")) {
            JsonNode a = n.get("address");
            Matcher m = a.isTextual() ? HOST_PORT.matcher(a.asText()) : null;
            if (a.isTextual() && a.asText().isEmpty()) address = "";
            else if (m == null || !m.matches() || Integer.parseInt(m.group(2)) > 65535)
                throw new ConfigException(source + ": key \"metrics.address\" must be \"HOST:PORT\" (e.g. \"127.0.0.1:9466\"), or \"\" to disable the endpoint; got " + a);
            else address = a.asText();
        }
        Duration interval = n.has("logInterval") ? duration(n.get("logInterval"), "metrics.logInterval", "(0 disables)", source) : d.logInterval();
        return new Config.Metrics(address, interval);
    }

    /** A duration: "500ms", "60s", "5m", "1h", or the integer 0. */
    private static Duration duration(JsonNode v, String key, String note, String source) throws ConfigException {
        Matcher m = v.isTextual() ? DURATION.matcher(v.asText().trim()) : null;
        if (v.isIntegralNumber() && v.asLong() == 0) return Duration.ZERO;
        if (m == null || !m.matches())
            throw new ConfigException(source + ": key \"" + key + "\" must be a duration such as \"60s\", \"5m\", \"1h\" or \"500ms\" " + note + "; got " + v);
        long x = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(x);
            case "s" -> Duration.ofSeconds(x);
            case "m" -> Duration.ofMinutes(x);
            default -> Duration.ofHours(x);
        };
    }

    private static Config.Lazy lazy(JsonNode n, String source) throws ConfigException {
        Config.Lazy d = Config.Lazy.defaults();
        if (n == null) return d;
        ObjectNode o = object(n, "lazy", LAZY_KEYS, "{\"enabled\": true, \"readDeadline\": \"30s\"}", source);
        boolean enabled = bool(o, "enabled", d.enabled(), "lazy.", source);
        Duration deadline = o.has("readDeadline") ? duration(o.get("readDeadline"), "lazy.readDeadline", "(more than 0)", source) : d.readDeadline();
        if (deadline.isZero()) throw new ConfigException(source + ": key \"lazy.readDeadline\" must be more than 0; got " + o.get("readDeadline"));
        int concurrency = d.prefetchConcurrency();
        if (o.has("prefetchConcurrency")) {
            JsonNode v = o.get("prefetchConcurrency");
            if (!v.isIntegralNumber() || v.asLong() < 0 || v.asLong() > 64)
                throw new ConfigException(source + ": key \"lazy.prefetchConcurrency\" must be an integer from 0 (no background fetching) to 64; got " + v);
            concurrency = v.asInt();
        }
        long bandwidth = !o.has("prefetchBandwidth") || (o.get("prefetchBandwidth").isIntegralNumber() && o.get("prefetchBandwidth").asLong() == 0)
                ? d.prefetchBandwidth() : size(o.get("prefetchBandwidth"), "lazy.prefetchBandwidth", source);
        Duration delay = o.has("prefetchDelay") ? duration(o.get("prefetchDelay"), "lazy.prefetchDelay", "(0 starts at once)", source) : d.prefetchDelay();
        List<String> plain = hosts(o, "plainHttp", source);
        List<String> registries = hosts(o, "registries", source);
        Duration trace = o.has("traceWindow") ? duration(o.get("traceWindow"), "lazy.traceWindow", "(0 records no traces)", source) : d.traceWindow();
        long readAhead = !o.has("readAhead") ? d.readAhead()
                : o.get("readAhead").isIntegralNumber() && o.get("readAhead").asLong() == 0 ? 0 : size(o.get("readAhead"), "lazy.readAhead", source);
        String hostsDir = d.hostsDir();
        if (o.has("hostsDir")) {
            JsonNode v = o.get("hostsDir");
            if (!v.isTextual() || Arrays.stream(v.asText().split(":")).anyMatch(p -> !p.isEmpty() && !p.startsWith("/")))
                throw new ConfigException(source + ": key \"lazy.hostsDir\" must be absolute directories separated by colons, such as \""
                        + Config.Lazy.DEFAULT_HOSTS_DIR + "\" (\"\" reads none); got " + v);
            hostsDir = v.asText();
        }
        return new Config.Lazy(enabled, deadline, concurrency, bandwidth, delay, plain, trace, readAhead, registries, hostsDir);
    }

    /** A list of registries as HOST or HOST:PORT under lazy.KEY. */
    private static List<String> hosts(ObjectNode o, String key, String source) throws ConfigException {
        List<String> out = new ArrayList<>();
        if (!o.has(key)) return out;
        JsonNode v = o.get(key);
        if (!v.isArray()) throw new ConfigException(source + ": key \"lazy." + key + "\" must be a list of registries such as [\"registry.local:5000\"]; got " + v);
        for (JsonNode h : v) {
            if (!h.isTextual() || h.asText().isEmpty() || h.asText().contains("/"))
                throw new ConfigException(source + ": key \"lazy." + key + "\" must list registries as HOST or HOST:PORT; got " + h);
            out.add(h.asText());
        }
        return List.copyOf(out);
    }

    private static Config.Ksm ksm(JsonNode n, String source) throws ConfigException {
        Config.Ksm d = Config.Ksm.defaults();
        if (n == null) return d;
        ObjectNode o = object(n, "ksm", KSM_KEYS, "{\"containers\": \"opt-in\"}", source);
        String containers = choice(o, "containers", d.containers(), Set.of("off", "opt-in", "all"), "ksm.", source);
        String runc = d.runc();
        if (o.has("runc")) {
            JsonNode r = o.get("runc");
            if (!r.isTextual() || !(r.asText().isEmpty() || r.asText().startsWith("/")))
                throw new ConfigException(source + ": key \"ksm.runc\" must be the absolute path of the real runc (e.g. \"/usr/sbin/runc\"), or \"\" to search for it; got " + r);
            runc = r.asText();
        }
        boolean buffers = bool(o, "daemonBuffers", d.daemonBuffers(), "ksm.", source);
        Config.KsmKernel k = Config.KsmKernel.unchanged();
        if (o.has("kernel")) {
            ObjectNode kn = object(o.get("kernel"), "ksm.kernel", KSM_KERNEL_KEYS, "{\"run\": true, \"pagesToScan\": 1000}", source);
            k = new Config.KsmKernel(
                    kn.has("run") ? bool(kn, "run", false, "ksm.kernel.", source) : null,
                    intIn(kn, "ksm.kernel.", "pagesToScan", 1, 1 << 24, "", source),
                    intIn(kn, "ksm.kernel.", "sleepMillisecs", 0, 3_600_000, "", source),
                    kn.has("advisorMode") ? choice(kn, "advisorMode", null, Set.of("none", "scan-time"), "ksm.kernel.", source) : null,
                    kn.has("useZeroPages") ? bool(kn, "useZeroPages", false, "ksm.kernel.", source) : null,
                    intIn(kn, "ksm.kernel.", "maxPageSharing", 2, 1 << 20, "", source));
        }
        return new Config.Ksm(containers, runc, buffers, k);
    }

    private static ObjectNode object(JsonNode n, String key, Set<String> keys, String example, String source) throws ConfigException {
        if (!n.isObject()) throw new ConfigException(source + ": key \"" + key + "\" must be an object such as " + example + "; got " + n);
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!keys.contains(k))
                throw new ConfigException(source + ": unknown key \"" + key + "." + k + "\"; known keys: "
                        + String.join(", ", keys.stream().sorted().map(x -> key + "." + x).toList()));
        }
        return (ObjectNode) n;
    }

    private static boolean bool(ObjectNode o, String key, boolean dflt, String prefix, String source) throws ConfigException {
        if (!o.has(key)) return dflt;
        if (!o.get(key).isBoolean()) throw new ConfigException(source + ": key \"" + prefix + key + "\" must be true or false; got " + o.get(key));
        return o.get(key).asBoolean();
    }

    /** o's key as an integer from min to max, or null when absent; prefix names the key's object ("ksm.kernel."), hint follows the range. */
    private static Integer intIn(ObjectNode o, String prefix, String key, int min, int max, String hint, String source) throws ConfigException {
        if (!o.has(key)) return null;
        JsonNode v = o.get(key);
        if (!v.isIntegralNumber() || v.asLong() < min || v.asLong() > max)
            throw new ConfigException(source + ": key \"" + prefix + key + "\" must be an integer from " + min + " to " + max + hint + "; got " + v);
        return v.asInt();
    }

    /** A chunk size given on a command line ("4MiB", "65536"), checked as the chunkSize key is. */
    public static long chunkSize(String text, String what) throws ConfigException {
        long v = size(new TextNode(text), "chunkSize", what);
        if (Long.bitCount(v) != 1 || v < 4096 || v > (1L << 30))
            throw new ConfigException(what + ": must be a power of two between 4KiB and 1GiB, e.g. \"4MiB\"; got " + text);
        return v;
    }

    /** A byte size: a JSON integer, or a string such as "4MiB". */
    static long size(JsonNode n, String key, String source) throws ConfigException {
        if (n.isIntegralNumber() && n.asLong() > 0) return n.asLong();
        if (n.isTextual()) {
            Matcher m = SIZE.matcher(n.asText().trim());
            if (m.matches()) {
                long v = Long.parseLong(m.group(1));
                String unit = m.group(2) == null ? "B" : m.group(2);
                int shift = Map.of("B", 0, "KiB", 10, "MiB", 20, "GiB", 30, "TiB", 40).get(unit);
                if (v > 0 && v <= (Long.MAX_VALUE >> shift)) return v << shift;
            }
        }
        throw new ConfigException(source + ": key \"" + key + "\" must be a positive size: bytes as an integer or a string such as \"4MiB\" (units B, KiB, MiB, GiB, TiB); got " + n);
    }
}
