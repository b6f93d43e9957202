package org.dedupsnapshotter.daemon;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shape docs/architecture.md draws, read from the sources of every module: no package cycle anywhere, and
 * inside the daemon the arrows go one way (the program → grpc → snapshots → {lazypull, layers}, lazypull → layers;
 * the program → cri, which uses none of the daemon's packages, only the lazy module's credential store).
 */
class ArchitectureTest {
    private static final String DAEMON = "org.dedupsnapshotter.daemon";
    /** Which daemon packages each daemon package may use; anything else is an arrow back (or sideways). */
    private static final Map<String, Set<String>> ALLOWED = Map.of(
            DAEMON, Set.of("grpc", "cri", "metrics", "snapshots", "lazypull", "layers", "memory"),
            DAEMON + ".cri", Set.of(),
            DAEMON + ".grpc", Set.of("snapshots", "lazypull", "layers", "memory"),
            DAEMON + ".metrics", Set.of("snapshots", "lazypull", "layers", "memory"),
            DAEMON + ".snapshots", Set.of("lazypull", "layers"),
            DAEMON + ".lazypull", Set.of("layers"),
            DAEMON + ".memory", Set.of("layers"),
            DAEMON + ".layers", Set.of());
    private static final Pattern USE = Pattern.compile("\\b(org\\.dedupsnapshotter(?:\\.[a-z][a-z0-9]*)+)\\.[A-Z]");

    /** package → the project's packages its main sources use (imports and inline qualified names). */
    static Map<String, Set<String>> packageGraph(Path projectRoot) throws IOException {
        Map<String, Set<String>> graph = new TreeMap<>();
        try (Stream<Path> files = Files.walk(projectRoot)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java") && p.toString().contains("/src/main/java/")).toList()) {
                String src = Files.readString(f);
                Matcher pm = Pattern.compile("^package ([\\w.]+);", Pattern.MULTILINE).matcher(src);
                if (!pm.find()) continue;
                String pkg = pm.group(1);
                Set<String> uses = graph.computeIfAbsent(pkg, k -> new TreeSet<>());
                Matcher m = USE.matcher(src.replaceAll("(?s)/\\*.*?\\*/|//[^\\n]*", ""));
                while (m.find()) if (!m.group(1).equals(pkg)) uses.add(m.group(1));
            }
        }
        return graph;
    }

    private static Path projectRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (!Files.exists(p.resolve("daemon/pom.xml"))) p = p.getParent();
        return p;
    }

    @Test
    void noPackageCycleAnywhere() throws IOException {
        Map<String, Set<String>> graph = packageGraph(projectRoot());
        assertTrue(graph.size() > 20, "the scan found the project's packages: " + graph.keySet());
        List<List<String>> cycles = cycles(graph);
        assertEquals(List.of(), cycles, "package cycles");
    }

    @Test
    void daemonArrowsGoOneWay() throws IOException {
        List<String> wrong = new ArrayList<>();
        packageGraph(projectRoot()).forEach((pkg, uses) -> {
            if (!pkg.startsWith(DAEMON)) return;
            Set<String> allowed = ALLOWED.get(pkg);
            if (allowed == null) {
                wrong.add(pkg + " is not among the daemon's packages (add it to ALLOWED and docs/architecture.md)");
                return;
            }
            for (String u : uses)
                if (u.startsWith(DAEMON + ".") && !allowed.contains(u.substring(DAEMON.length() + 1)) || u.equals(DAEMON))
                    wrong.add(pkg + " → " + u);
        });
        assertEquals(List.of(), wrong);
    }

    @Test
    void theScanSeesACycle() {
        Map<String, Set<String>> g = Map.of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a"), "d", Set.of("a"));
        assertEquals(List.of(List.of("a", "b", "c")), cycles(g));
    }

    /** Strongly connected components with more than one package (Tarjan), each sorted. */
    static List<List<String>> cycles(Map<String, Set<String>> graph) {
        return new Object() {
            final Map<String, Integer> index = new TreeMap<>(), low = new TreeMap<>();
            final List<String> stack = new ArrayList<>();
            final List<List<String>> out = new ArrayList<>();
            int next;

            List<List<String>> run() {
                for (String v : new TreeSet<>(graph.keySet())) if (!index.containsKey(v)) visit(v);
                return out;
            }

            void visit(String v) {
                index.put(v, next);
                low.put(v, next++);
                stack.add(v);
                for (String w : graph.getOrDefault(v, Set.of())) {
                    if (!index.containsKey(w)) {
                        visit(w);
                        low.put(v, Math.min(low.get(v), low.get(w)));
                    } else if (stack.contains(w)) {
                        low.put(v, Math.min(low.get(v), index.get(w)));
                    }
                }
                if (low.get(v).equals(index.get(v))) {
                    List<String> scc = new ArrayList<>();
                    String w;
                    do {
                        w = stack.removeLast();
                        scc.add(w);
                    } while (!w.equals(v));
                    if (scc.size() > 1) out.add(scc.stream().sorted().toList());
                }
            }
        }.run();
    }

}
