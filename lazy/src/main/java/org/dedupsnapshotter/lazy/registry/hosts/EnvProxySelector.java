package org.dedupsnapshotter.lazy.registry.hosts;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case forms, upper-case first) as Go's
 * golang.org/x/net/http/httpproxy reads them, which is what containerd does: https:// requests go through
 * HTTPS_PROXY, http:// through HTTP_PROXY; loopback (localhost, 127.0.0.0/8, ::1) is never proxied; NO_PROXY is a
 * comma-separated list of "*" (nothing proxied), HOST (that host and its subdomains), .DOMAIN or *.DOMAIN
 * (subdomains only), HOST:PORT (that port only), and IP or CIDR. Java's own selector reads system properties, not
 * the environment, hence this one.
 */
public final class EnvProxySelector extends ProxySelector {
    private final URI httpsProxy, httpProxy;
    private final List<String> noProxy;

    public EnvProxySelector(Map<String, String> env) {
        this.httpsProxy = proxyUri(first(env, "HTTPS_PROXY", "https_proxy"));
        this.httpProxy = proxyUri(first(env, "HTTP_PROXY", "http_proxy"));
        List<String> n = new ArrayList<>();
        String list = first(env, "NO_PROXY", "no_proxy");
        if (list != null)
            for (String s : list.split(",")) if (!s.isBlank()) n.add(s.strip().toLowerCase(Locale.ROOT));
        this.noProxy = List.copyOf(n);
    }

    public static EnvProxySelector fromEnvironment() { return new EnvProxySelector(System.getenv()); }

    /** Whether any proxy is set (for log lines). */
    public boolean any() { return httpsProxy != null || httpProxy != null; }

    @Override
    public List<Proxy> select(URI uri) {
        URI p = proxyFor(uri);
        if (p == null) return List.of(Proxy.NO_PROXY);
        int port = p.getPort() > 0 ? p.getPort() : p.getScheme().equals("https") ? 443 : 80;
        return List.of(new Proxy(Proxy.Type.HTTP, InetSocketAddress.createUnresolved(p.getHost(), port)));
    }

    /** The proxy for a request to uri, or null: direct. */
    public URI proxyFor(URI uri) {
        URI proxy = "https".equalsIgnoreCase(uri.getScheme()) ? httpsProxy : "http".equalsIgnoreCase(uri.getScheme()) ? httpProxy : null;
        if (proxy == null || uri.getHost() == null) return null;
        String host = uri.getHost().toLowerCase(Locale.ROOT);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        int port = uri.getPort() > 0 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
        if (host.equals("localhost") || isLoopback(host)) return null;
        return bypassed(host, port) ? null : proxy;
    }

    private boolean bypassed(String host, int port) {
        for (String entry : noProxy) {
            if (entry.equals("*")) return true;
            if (entry.contains("/")) {
                if (isIp(host) && inCidr(host, entry)) return true;
                continue;
            }
            String name = entry;
            int want = -1;
            int colon = entry.lastIndexOf(':');
            if (colon > 0 && entry.indexOf(':') == colon) { // HOST:PORT (an IPv6 address has several colons)
                name = entry.substring(0, colon);
                try {
                    want = Integer.parseInt(entry.substring(colon + 1));
                } catch (NumberFormatException e) {
                    continue;
                }
            }
            if (name.startsWith("[") && name.endsWith("]")) name = name.substring(1, name.length() - 1);
            if (want >= 0 && want != port) continue;
            if (isIp(name)) {
                if (isIp(host) && sameIp(host, name)) return true;
                continue;
            }
            if (name.startsWith("*.")) name = name.substring(1);
            if (name.startsWith(".")) {
                if (host.endsWith(name)) return true;
            } else if (host.equals(name) || host.endsWith("." + name)) return true;
        }
        return false;
    }

    private static boolean isLoopback(String host) {
        if (!isIp(host)) return false;
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static boolean isIp(String s) {
        return s.matches("[0-9.]+") && s.chars().filter(c -> c == '.').count() == 3 || s.contains(":") && s.matches("[0-9a-f:.]+");
    }

    private static boolean sameIp(String a, String b) {
        try {
            return InetAddress.getByName(a).equals(InetAddress.getByName(b));
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static boolean inCidr(String ip, String cidr) {
        try {
            String[] parts = cidr.split("/");
            byte[] net = InetAddress.getByName(parts[0]).getAddress();
            byte[] a = InetAddress.getByName(ip).getAddress();
            int bits = Integer.parseInt(parts[1]);
            if (net.length != a.length || bits < 0 || bits > net.length * 8) return false;
            for (int i = 0; i < bits; i++) {
                int mask = 0x80 >> (i % 8);
                if ((net[i / 8] & mask) != (a[i / 8] & mask)) return false;
            }
            return true;
        } catch (UnknownHostException | NumberFormatException e) {
            return false;
        }
    }

    private static String first(Map<String, String> env, String upper, String lower) {
        String v = env.get(upper);
        if (v == null || v.isEmpty()) v = env.get(lower);
        return v == null || v.isEmpty() ? null : v;
    }

    /**
     * A proxy as Go reads it: a bare HOST:PORT is http://HOST:PORT. A user and password in it are refused (Java's
     * client does not send them to a proxy by default, and a login that silently does nothing is worse than an
     * error); messages never repeat the value, which may hold them.
     */
    private static URI proxyUri(String v) {
        if (v == null) return null;
        URI u;
        try {
            u = new URI(v.contains("://") ? v : "http://" + v);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("a proxy variable (HTTPS_PROXY, HTTP_PROXY) is not a URL such as http://proxy.example:3128");
        }
        if (u.getHost() == null) throw new IllegalArgumentException("a proxy variable (HTTPS_PROXY, HTTP_PROXY) is not a URL such as http://proxy.example:3128");
        if (u.getRawUserInfo() != null)
            throw new IllegalArgumentException("proxy " + u.getHost() + ": a user and password in HTTPS_PROXY/HTTP_PROXY are not supported; use a proxy that admits the node without them");
        return u;
    }

    @Override
    public void connectFailed(URI uri, SocketAddress sa, IOException ioe) {
        // one proxy per scheme: nothing to fall back to
    }
}
