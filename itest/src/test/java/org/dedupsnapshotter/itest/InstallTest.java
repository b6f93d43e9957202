package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** make install DESTDIR=…: the documented layout, a unit systemd accepts, and an installed daemon that serves containerd. */
class InstallTest {
    @Test
    void installLayoutUnitAndInstalledDaemon() throws Exception {
        Path dest = Files.createTempDirectory("dedup-itest-install-");
        try {
            Proc.Result r = Proc.run(Duration.ofMinutes(5), List.of("make", "-s", "-C", TestEnv.TOP.toString(), "install", "DESTDIR=" + dest));
            assertEquals(0, r.code(), r.out());
            assertTrue(r.out().contains("[proxy_plugins.dedup]"), "install prints the containerd snippet:\n" + r.out());
            Path home = dest.resolve("usr/local/lib/dedup-snapshotter");
            for (String p : List.of("usr/local/bin/dedup-snapshotter", "usr/local/bin/dedupctl", "usr/local/bin/dedup-runc", "usr/local/lib/dedup-snapshotter/lib/dedup-daemon.jar",
                    "usr/local/lib/dedup-snapshotter/lib/dedup-cli.jar",
                    "usr/local/lib/dedup-snapshotter/lib/native/libsqlitejdbc.so", "usr/local/lib/dedup-snapshotter/lib/native/liblz4-java.so",
                    "usr/local/lib/dedup-snapshotter/libexec/dedup-java.sh", "lib/systemd/system/dedup-snapshotter.service",
                    "etc/dedup-snapshotter/config.json", "usr/local/share/doc/dedup-snapshotter/README.md",
                    "usr/share/bash-completion/completions/dedupctl"))
                assertTrue(Files.exists(dest.resolve(p), LinkOption.NOFOLLOW_LINKS), p + " not installed");
            for (String c : List.of("dedup-daemon.aot", "dedupctl.aot")) // the AOT caches, when make build could train them
                if (Files.exists(TestEnv.TOP.resolve("build/lib").resolve(c))) assertTrue(Files.exists(home.resolve("lib").resolve(c)), c + " not installed");
            // staged (DESTDIR, as for a package): the daemon's cache without the address make build trained it for on this
            // node, so that every node of the package relocates it at each start (decision 80); root's alone to read
            assertFalse(Files.exists(home.resolve("lib/dedup-daemon.aot.base")), "a staged install carries this node's cache address");
            if (Files.exists(home.resolve("lib/dedup-daemon.aot")))
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(home.resolve("lib/dedup-daemon.aot"))));

            assertTrue(Files.readString(dest.resolve("usr/share/bash-completion/completions/dedupctl")).contains("complete -F _complete_dedupctl"),
                    "the bash completion is dedupctl completion bash's");
            // an existing config is never overwritten
            Files.writeString(dest.resolve("etc/dedup-snapshotter/config.json"), "{\"logLevel\": \"debug\"}");
            assertEquals(0, Proc.run(Duration.ofMinutes(5), List.of("make", "-s", "-C", TestEnv.TOP.toString(), "install", "DESTDIR=" + dest)).code());
            assertEquals("{\"logLevel\": \"debug\"}", Files.readString(dest.resolve("etc/dedup-snapshotter/config.json")));
            Files.copy(TestEnv.TOP.resolve("config/config.json"), dest.resolve("etc/dedup-snapshotter/config.json"), StandardCopyOption.REPLACE_EXISTING);

            // systemd accepts the unit (its ExecStart pointed at the staged binary, since /usr/local is not ours to fill)
            Path unitDir = Files.createDirectories(dest.resolve("verify"));
            Path unit = unitDir.resolve("dedup-snapshotter.service");
            Files.writeString(unit, Files.readString(dest.resolve("lib/systemd/system/dedup-snapshotter.service"))
                    .replace("/usr/local/bin/dedup-snapshotter", home.resolve("bin/dedup-snapshotter").toString())
                    .replace("/etc/dedup-snapshotter/config.json", dest.resolve("etc/dedup-snapshotter/config.json").toString()));
            Proc.Result verify = Proc.run(Duration.ofMinutes(1), List.of("systemd-analyze", "verify", unit.toString()));
            assertEquals(0, verify.code(), verify.out());
            assertEquals("", verify.out().strip(), "systemd-analyze verify complains");

            // the installed daemon, from the installed config, serves containerd
            try (TestEnv env = TestEnv.full(null, List.of("--config", dest.resolve("etc/dedup-snapshotter/config.json").toString()),
                    home.resolve("bin/dedup-snapshotter"))) {
                String ref = OciImage.push(env.registry(), "itest/installed", "1", List.of(Images.base().finish()), List.of("/bin/sh"));
                env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
                assertTrue(env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "installed-run", "/bin/echo", "from-installed").contains("from-installed"));
            }

            Proc.Result un = Proc.run(Duration.ofMinutes(5), List.of("make", "-s", "-C", TestEnv.TOP.toString(), "uninstall", "DESTDIR=" + dest));
            assertEquals(0, un.code(), un.out());
            assertFalse(Files.exists(home));
            assertFalse(Files.exists(dest.resolve("usr/share/bash-completion/completions/dedupctl")), "uninstall removes the completion");
            assertTrue(Files.exists(dest.resolve("etc/dedup-snapshotter/config.json")), "uninstall keeps the config");
        } finally {
            Proc.run(Duration.ofMinutes(1), List.of("rm", "-rf", dest.toString()));
        }
    }
}
