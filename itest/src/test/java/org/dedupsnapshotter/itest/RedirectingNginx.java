package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Debian's nginx as a registry that keeps its blobs on a CDN, the way Docker Hub and registries on S3 do: "front"
 * servers proxy everything to the test's docker-registry except blob GETs, which they answer with a 307 to a
 * signed-looking URL (X-Amz-Date = now, X-Amz-Expires = the server's life, X-Amz-Signature = a fresh request id) at
 * the "cdn" server, which serves the blob files straight from the registry's filesystem storage, with Range. A
 * signature named in revoked/ is refused with 403 (as storage refuses an expired one). Both log every request in one
 * parseable line. Started by PID with its own prefix directory; stopped by close.
 */
final class RedirectingNginx implements AutoCloseable {
    /** One logged request: port, method, URI, status, user agent. */
    record Request(int port, String method, String uri, int status, String agent) {
        boolean isBlobOf(String digest) { return uri.contains(digest) || uri.contains("/" + digest.substring("sha256:".length()) + "/data"); }
    }

    private static final Pattern LINE = Pattern.compile("^(\\d+) (\\S+) \"([^\"]*)\" (\\d+) \"([^\"]*)\"$");
    private static final Pattern SIGNATURE = Pattern.compile("X-Amz-Signature=([0-9a-f]+)");

    final Path dir;
    final int cdnPort;
    final List<Integer> frontPorts = new ArrayList<>();
    private final Proc nginx;

    /** A front per life in seconds (the X-Amz-Expires of its redirects), all before one cdn. */
    RedirectingNginx(Path dir, int registryPort, Path registryStorage, List<Integer> lives) throws Exception {
        this.dir = Files.createDirectories(dir);
        Files.createDirectories(dir.resolve("revoked"));
        Files.createDirectories(dir.resolve("tmp"));
        cdnPort = TestEnv.freePort();
        StringBuilder fronts = new StringBuilder();
        for (int life : lives) {
            int port = TestEnv.freePort();
            frontPorts.add(port);
            fronts.append("""
                    server {
                        listen 127.0.0.1:%1$d;
                        access_log %2$s/access.log counted;
                        client_max_body_size 0;
                        proxy_buffering off;
                        location ~ "^/v2/.+/blobs/sha256:(?<blob_pfx>[0-9a-f]{2})(?<blob_rest>[0-9a-f]{62})$" {
                            if ($request_method = GET) {
                                return 307 "http://127.0.0.1:%3$d/docker/registry/v2/blobs/sha256/$blob_pfx/$blob_pfx$blob_rest/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=$amz_date&X-Amz-Expires=%4$d&X-Amz-Signature=$request_id";
                            }
                            proxy_pass http://127.0.0.1:%5$d;
                        }
                        location / {
                            proxy_pass http://127.0.0.1:%5$d;
                        }
                    }
                    """.formatted(port, dir, cdnPort, life, registryPort));
        }
        String conf = """
                daemon off;
                master_process on;
                worker_processes 1;
                user root;
                pid %1$s/nginx.pid;
                error_log %1$s/error.log info;
                events { worker_connections 512; }
                http {
                    client_body_temp_path %1$s/tmp/body;
                    proxy_temp_path %1$s/tmp/proxy;
                    fastcgi_temp_path %1$s/tmp/fastcgi;
                    uwsgi_temp_path %1$s/tmp/uwsgi;
                    scgi_temp_path %1$s/tmp/scgi;
                    log_format counted '$server_port $request_method "$request_uri" $status "$http_user_agent"';
                    map $time_iso8601 $amz_date {
                        "~^(?<amz_y>\\d{4})-(?<amz_mo>\\d\\d)-(?<amz_d>\\d\\d)T(?<amz_h>\\d\\d):(?<amz_mi>\\d\\d):(?<amz_s>\\d\\d)" "${amz_y}${amz_mo}${amz_d}T${amz_h}${amz_mi}${amz_s}Z";
                    }
                    map $args $amz_signature {
                        "~X-Amz-Signature=(?<amz_sig>[0-9a-f]+)" $amz_sig;
                        default unsigned;
                    }
                %2$s
                    server {
                        listen 127.0.0.1:%3$d;
                        access_log %1$s/access.log counted;
                        root %4$s;
                        location /docker/registry/v2/blobs/ {
                            if (-f %1$s/revoked/$amz_signature) {
                                return 403;
                            }
                        }
                        location / {
                            return 404;
                        }
                    }
                }
                """.formatted(dir, fronts, cdnPort, registryStorage);
        Path cfg = dir.resolve("nginx.conf");
        Files.writeString(cfg, conf);
        // TZ=UTC: $time_iso8601 is local time, and X-Amz-Date is UTC
        nginx = Proc.start("nginx", dir.resolve("nginx.out"), List.of("/usr/sbin/nginx", "-p", dir.toString(), "-e", dir.resolve("error.log").toString(),
                "-c", cfg.toString()), Map.of("TZ", "UTC"));
        List<Integer> ports = new ArrayList<>(frontPorts);
        ports.add(cdnPort);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        for (int port : ports) {
            while (true) {
                try (Socket s = new Socket("127.0.0.1", port)) {
                    break;
                } catch (IOException e) {
                    if (!nginx.alive() || System.nanoTime() > deadline)
                        throw new IllegalStateException("nginx did not start:\n" + nginx.logTail() + "\n" + Files.readString(dir.resolve("error.log")));
                    Thread.sleep(50);
                }
            }
        }
    }

    String front(int i) { return "127.0.0.1:" + frontPorts.get(i); }

    /** All requests logged so far. */
    List<Request> requests() throws IOException {
        List<Request> out = new ArrayList<>();
        Path log = dir.resolve("access.log");
        if (!Files.exists(log)) return out;
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            Matcher m = LINE.matcher(line);
            if (m.matches()) out.add(new Request(Integer.parseInt(m.group(1)), m.group(2), m.group(3), Integer.parseInt(m.group(4)), m.group(5)));
        }
        return out;
    }

    /** Every URL handed out so far is refused from now on (403 at the cdn), as an expired signature is. */
    void revokeAllHandedOut() throws IOException {
        for (Request r : requests()) {
            Matcher m = SIGNATURE.matcher(r.uri);
            if (r.port == cdnPort && m.find()) Files.writeString(dir.resolve("revoked").resolve(m.group(1)), "");
        }
    }

    @Override
    public void close() throws InterruptedException {
        nginx.terminate(Duration.ofSeconds(10));
    }
}
