import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.logging.Logger;

// A small HTTP service: starts, answers its own first request, prints that answer, stops.
public class Svc {
    public static void main(String[] args) throws Exception {
        Logger log = Logger.getLogger("svc");
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            byte[] body = ("service ready, " + Runtime.version()).getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (var out = exchange.getResponseBody()) { out.write(body); }
        });
        server.start();
        log.fine("listening on " + server.getAddress());
        var connection = (HttpURLConnection) new URL("http://127.0.0.1:" + server.getAddress().getPort() + "/").openConnection();
        try (InputStream in = connection.getInputStream()) {
            System.out.println(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        server.stop(0);
    }
}
