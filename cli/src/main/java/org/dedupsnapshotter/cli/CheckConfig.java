package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.cli.checkconfig.ConfigCheck;
import org.dedupsnapshotter.cli.checkconfig.ContainerdConfigReader;
import org.dedupsnapshotter.cli.checkconfig.Finding;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;

/**
 * dedupctl check-config [--config FILE] [--containerd-bin BINARY] [--json]: is this node's containerd config what
 * dedup needs, for this containerd's version? One line per item; exit 0 when every required item is there, 1 otherwise.
 */
@Command(name = "check-config", description = {"check containerd's config for dedup; exit 1 when a required item is missing",
        "",
        "For the containerd version found: what is there, and what is missing and where to add it. Reads containerd's effective config (`containerd --config FILE config dump`) "
        + "when its binary is there, else the file. Exit 1 when a required item is missing."})
final class CheckConfig extends DedupCtl.Base implements Callable<Integer> {
    @Option(names = "--json", description = "print the result as JSON")
    boolean json;
    @Spec
    CommandSpec spec;
    @Option(names = "--config", paramLabel = "FILE", defaultValue = "/etc/containerd/config.toml", description = "containerd's config (default ${DEFAULT-VALUE})")
    Path file;
    @Option(names = "--containerd-bin", paramLabel = "PATH", description = "containerd's binary (default: containerd on PATH)")
    Path containerdBin;

    /** --containerd means containerd's socket everywhere else: here, a usage error that names the flag meant. */
    @Option(names = "--containerd", hidden = true)
    void containerdSocket(String value) {
        throw new ParameterException(spec.commandLine(), "check-config takes containerd's binary as --containerd-bin PATH "
                + "(--containerd is containerd's socket, which check-config does not use)");
    }

    @Override
    public Integer call() throws IOException {
        Optional<Path> containerd = Optional.ofNullable(containerdBin);
        if (containerd.isPresent() && !Files.isExecutable(containerd.get()))
            throw new ParameterException(spec.commandLine(), containerd.get() + " is not an executable containerd");
        if (containerd.isEmpty()) containerd = ContainerdConfigReader.onPath();

        ContainerdConfigReader.Reading reading;
        try {
            reading = ContainerdConfigReader.read(file, containerd);
        } catch (IOException e) {
            if (json) DedupCtl.printJson(DedupCtl.Json.MAPPER.createObjectNode().put("source", file.toString()).put("passes", false)
                    .put("error", "missing containerd config: " + e.getMessage()));
            else System.out.println("missing containerd config: " + e.getMessage());
            return DedupCtl.FAILED;
        }
        boolean containerd2 = reading.version().map(v -> v.is2x()).orElse(reading.config().version() >= 3);
        String target = reading.version().map(Object::toString)
                .orElse(containerd2 ? "containerd 2.x (config version " + reading.config().version() + ")" : "containerd 1.6/1.7 (config version " + reading.config().version() + ")");
        Config dedup = dedupConfig();
        List<Finding> findings = new ConfigCheck(dedup.address(), dedup.root(), CheckConfig::answers).check(reading.config(), containerd2);
        long missing = findings.stream().filter(f -> f.level() == Finding.Level.MISSING).count();
        boolean passes = ConfigCheck.passes(findings);
        if (json) {
            ObjectNode n = DedupCtl.Json.MAPPER.createObjectNode().put("source", reading.source().toString()).put("target", target);
            ArrayNode notes = n.putArray("notes");
            reading.notes().forEach(notes::add);
            ArrayNode items = n.putArray("findings");
            for (Finding f : findings)
                items.addObject().put("level", f.level().name().toLowerCase(Locale.ROOT)).put("item", f.item()).put("text", f.text());
            n.put("missing", missing).put("passes", passes);
            DedupCtl.printJson(n);
            return passes ? DedupCtl.OK : DedupCtl.FAILED;
        }
        System.out.println("checking " + reading.source() + " for " + target);
        for (String note : reading.notes()) System.out.println("note    " + note);
        findings.forEach(System.out::println);
        System.out.println(missing == 0 ? "all required items are present" : missing + " required " + (missing == 1 ? "item is" : "items are") + " missing or wrong");
        return passes ? DedupCtl.OK : DedupCtl.FAILED;
    }

    /** The daemon's config on this node (its address and root are what containerd should name), else the defaults. */
    private static Config dedupConfig() {
        try {
            return ConfigLoader.load(Config.DEFAULT_PATH, false);
        } catch (ConfigException e) {
            return Config.defaults();
        }
    }

    private static boolean answers(Path socket) {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
