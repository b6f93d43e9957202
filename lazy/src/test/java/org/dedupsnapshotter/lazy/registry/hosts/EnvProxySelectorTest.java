package org.dedupsnapshotter.lazy.registry.hosts;

import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.URI;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** HTTPS_PROXY/HTTP_PROXY/NO_PROXY as Go's httpproxy (containerd's) reads them. */
class EnvProxySelectorTest {
    static final URI PROXY = URI.create("http://proxy.corp:3128");

    @Test
    void httpsGoesThroughHttpsProxyAndHttpThroughHttpProxy() {
        EnvProxySelector s = new EnvProxySelector(Map.of("HTTPS_PROXY", "http://proxy.corp:3128", "http_proxy", "plain.corp:8080"));
        assertEquals(PROXY, s.proxyFor(URI.create("https://registry.example/v2/")));
        assertEquals(URI.create("http://plain.corp:8080"), s.proxyFor(URI.create("http://registry.example:5000/v2/")));
        List<Proxy> p = s.select(URI.create("https://registry.example/v2/"));
        assertEquals(Proxy.Type.HTTP, p.getFirst().type());
        assertEquals(3128, ((InetSocketAddress) p.getFirst().address()).getPort());
        assertEquals(List.of(Proxy.NO_PROXY), new EnvProxySelector(Map.of()).select(URI.create("https://registry.example/")));
    }

    @Test
    void aProxyWithAPasswordIsRefusedWithoutSayingIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new EnvProxySelector(Map.of("HTTPS_PROXY", "http://alice:s3cret@proxy.corp:3128")));
        assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
        assertTrue(e.getMessage().contains("proxy.corp"), e.getMessage());
    }

    @Test
    void upperCaseWinsOverLowerCase() {
        EnvProxySelector s = new EnvProxySelector(Map.of("HTTPS_PROXY", "http://proxy.corp:3128", "https_proxy", "http://other:1"));
        assertEquals(PROXY, s.proxyFor(URI.create("https://registry.example/")));
    }

    @Test
    void loopbackIsNeverProxied() {
        EnvProxySelector s = new EnvProxySelector(Map.of("HTTPS_PROXY", PROXY.toString(), "HTTP_PROXY", PROXY.toString()));
        assertNull(s.proxyFor(URI.create("https://localhost:5000/v2/")));
        assertNull(s.proxyFor(URI.create("http://127.0.0.1:5000/v2/")));
        assertNull(s.proxyFor(URI.create("http://127.9.9.9/v2/")));
        assertNull(s.proxyFor(URI.create("https://[::1]:5000/v2/")));
    }

    @Test
    void noProxyListsHostsDomainsPortsAndCidrs() {
        EnvProxySelector s = new EnvProxySelector(Map.of("HTTPS_PROXY", PROXY.toString(),
                "no_proxy", "internal.corp, .svc.local,*.cluster.x,registry.example:5000,10.0.0.0/8,192.168.1.7"));
        assertNull(s.proxyFor(URI.create("https://internal.corp/")));
        assertNull(s.proxyFor(URI.create("https://reg.internal.corp/")), "a HOST entry covers its subdomains");
        assertEquals(PROXY, s.proxyFor(URI.create("https://notinternal.corp/")));
        assertNull(s.proxyFor(URI.create("https://a.svc.local/")));
        assertEquals(PROXY, s.proxyFor(URI.create("https://svc.local/")), "a .DOMAIN entry covers subdomains only");
        assertNull(s.proxyFor(URI.create("https://r.cluster.x/")));
        assertNull(s.proxyFor(URI.create("https://registry.example:5000/")));
        assertEquals(PROXY, s.proxyFor(URI.create("https://registry.example/")), "HOST:PORT covers that port only");
        assertNull(s.proxyFor(URI.create("https://10.20.30.40:5000/")));
        assertEquals(PROXY, s.proxyFor(URI.create("https://11.0.0.1/")));
        assertNull(s.proxyFor(URI.create("https://192.168.1.7/")));
        assertNull(new EnvProxySelector(Map.of("HTTPS_PROXY", PROXY.toString(), "NO_PROXY", "*")).proxyFor(URI.create("https://anything/")));
    }
}
