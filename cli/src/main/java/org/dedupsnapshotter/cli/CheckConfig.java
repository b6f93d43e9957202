package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.cli.checkconfig.ConfigCheck;
import org.dedupsnapshotter.cli.checkconfig.ContainerdConfigReader;
import org.dedupsnapshotter.cli.checkconfig.Finding;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * dedupctl check-config [--config FILE] [--containerd BINARY]: is this node's containerd config what dedup needs, for
 * this containerd's version? One line per item; exit 0 when every required item is there, 1 otherwise.
 */
final class CheckConfig {
    static final String USAGE = "usage: dedupctl check-config [--config /etc/containerd/config.toml] [--containerd PATH_TO_containerd]";

    private CheckConfig() {}

    static int run(String[] args) {
        Path file = Path.of("/etc/containerd/config.toml");
        Optional<Path> containerd = Optional.empty();
        for (int j = 0; j < args.length; j++) {
            String a = args[j];
            if (!a.equals("--config") && !a.equals("--containerd")) return usage("unknown argument " + a);
            if (j + 1 >= args.length || args[j + 1].isEmpty()) return usage(a + " needs a value");
            if (a.equals("--config")) file = Path.of(args[++j]);
            else containerd = Optional.of(Path.of(args[++j]));
        }
        if (containerd.isPresent() && !Files.isExecutable(containerd.get()))
            return usage(containerd.get() + " is not an executable containerd");
        if (containerd.isEmpty()) containerd = ContainerdConfigReader.onPath();

        ContainerdConfigReader.Reading reading;
        try {
            reading = ContainerdConfigReader.read(file, containerd);
        } catch (IOException e) {
            System.out.println("missing containerd config: " + e.getMessage());
            return 1;
        }
        boolean containerd2 = reading.version().map(v -> v.is2x()).orElse(reading.config().version() >= 3);
        String target = reading.version().map(Object::toString)
                .orElse(containerd2 ? "containerd 2.x (config version " + reading.config().version() + ")" : "containerd 1.6/1.7 (config version " + reading.config().version() + ")");
        System.out.println("checking " + reading.source() + " for " + target);
        for (String note : reading.notes()) System.out.println("note    " + note);

        Config dedup = dedupConfig();
        List<Finding> findings = new ConfigCheck(dedup.address(), dedup.root(), CheckConfig::answers).check(reading.config(), containerd2);
        findings.forEach(System.out::println);
        long missing = findings.stream().filter(f -> f.level() == Finding.Level.MISSING).count();
        System.out.println(missing == 0 ? "all required items are present" : missing + " required " + (missing == 1 ? "item is" : "items are") + " missing or wrong");
        return ConfigCheck.passes(findings) ? 0 : 1;
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

    private static int usage(String why) {
        System.err.println("dedupctl check-config: " + why + "\n" + USAGE);
        return 2;
    }
}
