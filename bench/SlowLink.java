import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * A slow link in front of a registry, for the cold-start bench: java bench/SlowLink.java LISTEN_PORT TARGET_PORT
 * BYTES_PER_SECOND LATENCY_MS. Every new connection waits LATENCY_MS before it is forwarded (connection set-up over
 * a distant link); the registry's answers share one BYTES_PER_SECOND budget (the link's bandwidth), whoever asks.
 * This kernel has sch_tbf but not netem, so latency cannot come from tc; a proxy gives both, for every client alike.
 * An optional fifth argument COUNTER_PORT: whoever connects to 127.0.0.1:COUNTER_PORT reads the bytes the link has
 * carried from the registry so far (one decimal line), the same figure for every snapshotter (bench/peers.sh).
 */
public class SlowLink {
    static long bytesPerSecond, nextSend;
    static final java.util.concurrent.atomic.AtomicLong carried = new java.util.concurrent.atomic.AtomicLong();

    public static void main(String[] args) throws Exception {
        int listen = Integer.parseInt(args[0]), target = Integer.parseInt(args[1]);
        bytesPerSecond = Long.parseLong(args[2]);
        long latencyMs = Long.parseLong(args[3]);
        if (args.length > 4) {
            ServerSocket counter = new ServerSocket(Integer.parseInt(args[4]), 16, InetAddress.getLoopbackAddress());
            Thread.ofVirtual().start(() -> {
                while (true) {
                    try (Socket s = counter.accept(); OutputStream out = s.getOutputStream()) {
                        out.write((carried.get() + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    } catch (IOException e) {
                        // the asker went away
                    }
                }
            });
        }
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), listen), 128);
            System.out.println("slow link on 127.0.0.1:" + listen + " -> 127.0.0.1:" + target + ", " + bytesPerSecond + " B/s, " + latencyMs + " ms per connection");
            while (true) {
                Socket client = server.accept();
                if (System.getenv("SLOWLINK_LOG_CONNECTIONS") != null)
                    System.out.println(java.time.LocalTime.now() + " connection from port " + client.getPort());
                Thread.ofVirtual().start(() -> {
                    try {
                        Thread.sleep(latencyMs);
                        Socket upstream = new Socket(InetAddress.getLoopbackAddress(), target);
                        client.setTcpNoDelay(true);
                        upstream.setTcpNoDelay(true);
                        Thread.ofVirtual().start(() -> pump(client, upstream, false));
                        pump(upstream, client, true);
                    } catch (IOException | InterruptedException e) {
                        close(client);
                    }
                });
            }
        }
    }

    static void pump(Socket from, Socket to, boolean paced) {
        byte[] buf = new byte[16 * 1024];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            for (int n; (n = in.read(buf)) > 0; ) {
                if (paced) {
                    pace(n);
                    carried.addAndGet(n);
                }
                out.write(buf, 0, n);
            }
        } catch (IOException | InterruptedException e) {
            // one side went away
        } finally {
            close(from);
            close(to);
        }
    }

    static void pace(int bytes) throws InterruptedException {
        long wait;
        synchronized (SlowLink.class) {
            long now = System.nanoTime(), start = Math.max(now, nextSend);
            nextSend = start + bytes * 1_000_000_000L / bytesPerSecond;
            wait = start - now;
        }
        if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    }

    static void close(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing
        }
    }
}
