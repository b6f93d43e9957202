package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy in front of the test registry that sends the registry's answers at most bytesPerSecond (all
 * connections together), so reads of a lazily pulled image are still under way when a test kills something.
 * The real registry stays the real one; only the link is slow.
 * <p>
 * It can also misbehave, one new connection at a time (arming a fault cuts the connections under way, so the next
 * request needs a new one): answer an HTTP error itself ({@link #answerNext}), reset the connection after some bytes
 * of the answer ({@link #resetNext}), stop sending the answer for a while ({@link #stallNext}); or refuse every
 * connection for a while ({@link #refuseFor}). {@link #faultsServed} counts what it did.
 */
final class SlowProxy implements AutoCloseable {
    /** What the next new connection gets instead of a faithful link. */
    private sealed interface Fault {}

    private record Answer(int status, String headers) implements Fault {}

    private record Reset(long afterBytes) implements Fault {}

    private record Stall(long afterBytes, Duration forHowLong) implements Fault {}

    private final InetSocketAddress bound;
    private volatile ServerSocket server;
    private final int target;
    private final long bytesPerSecond;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final ConcurrentLinkedQueue<Fault> faults = new ConcurrentLinkedQueue<>();
    private final AtomicInteger faultsServed = new AtomicInteger();
    private long nextSendNanos;
    private volatile boolean open = true;

    SlowProxy(int targetPort, long bytesPerSecond) throws IOException {
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        this.bound = (InetSocketAddress) server.getLocalSocketAddress();
        this.target = targetPort;
        this.bytesPerSecond = bytesPerSecond;
        startAccepting(server);
    }

    int port() { return bound.getPort(); }

    String address() { return "127.0.0.1:" + port(); }

    private void startAccepting(ServerSocket s) {
        Thread.ofPlatform().daemon(true).name("slow-proxy").start(() -> accept(s));
    }

    private void accept(ServerSocket s) {
        while (open && !s.isClosed()) {
            try {
                Socket client = s.accept();
                Fault fault = faults.poll();
                if (fault instanceof Answer a) {
                    sockets.add(client);
                    Thread.ofVirtual().start(() -> answer(client, a));
                    continue;
                }
                Socket upstream;
                try {
                    upstream = new Socket(InetAddress.getLoopbackAddress(), target);
                } catch (IOException refused) { // the registry is down: the client sees its connection close, as it would
                    client.close();
                    continue;
                }
                sockets.add(client);
                sockets.add(upstream);
                Thread.ofVirtual().start(() -> pump(client, upstream, false, null));
                Thread.ofVirtual().start(() -> pump(upstream, client, true, fault));
            } catch (IOException e) {
                if (!open || s.isClosed()) return;
            }
        }
    }

    /** Reads one request's headers and answers it with the fault's status, then closes. */
    private void answer(Socket client, Answer a) {
        try (client; InputStream in = client.getInputStream(); OutputStream out = client.getOutputStream()) {
            int matched = 0;
            byte[] end = {'\r', '\n', '\r', '\n'};
            for (int b; matched < 4 && (b = in.read()) >= 0; ) matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
            String body = "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected by the test proxy\"}]}";
            out.write(("HTTP/1.1 " + a.status + " Injected\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n" + a.headers
                    + "Connection: close\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
            out.flush();
            faultsServed.incrementAndGet();
        } catch (IOException e) {
            // the client went away
        }
    }

    private void pump(Socket from, Socket to, boolean slow, Fault fault) {
        byte[] buf = new byte[16 * 1024];
        long sent = 0;
        boolean faulted = false;
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                if (slow) pace(n);
                if (!faulted && fault instanceof Reset r && sent + n > r.afterBytes) {
                    out.write(buf, 0, (int) (r.afterBytes - sent));
                    out.flush();
                    faultsServed.incrementAndGet();
                    to.setSoLinger(true, 0); // close with a RST: "connection reset"
                    return;
                }
                if (!faulted && fault instanceof Stall st && sent + n > st.afterBytes) {
                    out.write(buf, 0, (int) (st.afterBytes - sent));
                    out.flush();
                    faultsServed.incrementAndGet();
                    faulted = true;
                    Thread.sleep(st.forHowLong); // the client sees nothing more for that long (or gives up and closes)
                    out.write(buf, (int) (st.afterBytes - sent), n - (int) (st.afterBytes - sent));
                    out.flush();
                    sent += n;
                    continue;
                }
                out.write(buf, 0, n);
                out.flush();
                sent += n;
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

    /** The next times new connections get an answer of status (with extra header lines, each ending in CRLF) from the proxy. */
    void answerNext(int times, int status, String headers) throws IOException {
        arm(times, new Answer(status, headers));
    }

    /** The next times new connections are reset after afterBytes bytes of the registry's answer. */
    void resetNext(int times, long afterBytes) throws IOException {
        arm(times, new Reset(afterBytes));
    }

    /** The next new connection sends afterBytes bytes of the registry's answer, then nothing for forHowLong. */
    void stallNext(long afterBytes, Duration forHowLong) throws IOException {
        arm(1, new Stall(afterBytes, forHowLong));
    }

    private void arm(int times, Fault f) throws IOException {
        for (int i = 0; i < times; i++) faults.add(f);
        cutConnections();
    }

    /** Refuses connections (nothing listens on the port) for forHowLong, from now; returns at once. */
    void refuseFor(Duration forHowLong) throws IOException {
        server.close();
        cutConnections();
        Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(forHowLong);
                ServerSocket s = new ServerSocket();
                s.setReuseAddress(true);
                s.bind(bound, 50);
                server = s;
                if (open) startAccepting(s); else s.close();
            } catch (IOException | InterruptedException e) {
                throw new IllegalStateException("the proxy could not listen on " + bound + " again", e);
            }
        });
    }

    /** Faults served so far (answers, resets, stalls). */
    int faultsServed() { return faultsServed.get(); }

    /** Faults armed and not served yet. */
    int faultsPending() { return faults.size(); }

    @Override
    public void close() throws IOException {
        open = false;
        server.close();
        for (Socket s : sockets) s.close();
    }
}
