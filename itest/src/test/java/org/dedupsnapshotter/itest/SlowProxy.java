package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP proxy in front of the test registry that sends the registry's answers at most bytesPerSecond (all
 * connections together), so reads of a lazily pulled image are still under way when a test kills something.
 * The real registry stays the real one; only the link is slow.
 */
final class SlowProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int target;
    private final long bytesPerSecond;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private long nextSendNanos;
    private volatile boolean open = true;

    SlowProxy(int targetPort, long bytesPerSecond) throws IOException {
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        this.target = targetPort;
        this.bytesPerSecond = bytesPerSecond;
        Thread.ofPlatform().daemon(true).name("slow-proxy").start(this::accept);
    }

    int port() { return server.getLocalPort(); }

    String address() { return "127.0.0.1:" + port(); }

    private void accept() {
        while (open) {
            try {
                Socket client = server.accept();
                Socket upstream;
                try {
                    upstream = new Socket(InetAddress.getLoopbackAddress(), target);
                } catch (IOException refused) { // the registry is down: the client sees its connection close, as it would
                    client.close();
                    continue;
                }
                sockets.add(client);
                sockets.add(upstream);
                Thread.ofVirtual().start(() -> pump(client, upstream, false));
                Thread.ofVirtual().start(() -> pump(upstream, client, true));
            } catch (IOException e) {
                if (!open) return;
            }
        }
    }

    private void pump(Socket from, Socket to, boolean slow) {
        byte[] buf = new byte[16 * 1024];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                if (slow) pace(n);
                out.write(buf, 0, n);
                out.flush();
            }
        } catch (IOException | InterruptedException e) {
            // a side closed
        } finally {
            try {
                from.close();
                to.close();
            } catch (IOException ignored) {
                // closing
            }
        }
    }

    private void pace(int bytes) throws InterruptedException {
        long wait;
        synchronized (this) {
            long now = System.nanoTime();
            long start = Math.max(now, nextSendNanos);
            nextSendNanos = start + bytes * 1_000_000_000L / bytesPerSecond;
            wait = start - now;
        }
        if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    }

    /** Breaks every connection under way (the client sees it end early); new ones are served as before. */
    void cutConnections() throws IOException {
        for (Socket s : sockets) s.close();
        sockets.clear();
    }

    @Override
    public void close() throws IOException {
        open = false;
        server.close();
        for (Socket s : sockets) s.close();
    }
}
