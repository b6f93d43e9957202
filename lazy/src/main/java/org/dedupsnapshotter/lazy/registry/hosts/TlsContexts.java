package org.dedupsnapshotter.lazy.registry.hosts;

import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.ClientPair;
import org.dedupsnapshotter.lazy.registry.hosts.RegistryEndpoint.Tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * The SSLContext of an endpoint's TLS settings, as containerd builds its tls.Config: the system's CAs plus the
 * endpoint's, the client certificates offered, and skip_verify trusting any server certificate (and name).
 * PEM files: certificates, and PKCS#8 private keys (openssl 3's default; "BEGIN PRIVATE KEY").
 */
public final class TlsContexts {
    private static final Pattern PEM = Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

    private TlsContexts() {}

    /** The context of tls; the JVM's default when it sets nothing. */
    public static SSLContext of(Tls tls, String endpoint) throws IOException {
        try {
            if (tls.isDefault()) return SSLContext.getDefault();
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(keyManagers(tls.clientPairs()), trustManagers(tls), null);
            return ctx;
        } catch (GeneralSecurityException | IOException e) {
            throw new IOException("TLS settings of " + endpoint + " (hosts.toml ca, client): " + e, e);
        }
    }

    private static KeyManager[] keyManagers(List<ClientPair> pairs) throws IOException, GeneralSecurityException {
        if (pairs.isEmpty()) return null;
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        int i = 0;
        for (ClientPair p : pairs) {
            List<Certificate> chain = certificates(p.cert());
            if (chain.isEmpty()) throw new IOException("client certificate " + p.cert() + ": no CERTIFICATE in it");
            PrivateKey key = privateKey(p.key() == null ? p.cert() : p.key(), (X509Certificate) chain.getFirst());
            ks.setKeyEntry("client" + i++, key, new char[0], chain.toArray(new Certificate[0]));
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, new char[0]);
        return kmf.getKeyManagers();
    }

    private static TrustManager[] trustManagers(Tls tls) throws IOException, GeneralSecurityException {
        if (Boolean.TRUE.equals(tls.skipVerify())) return new TrustManager[] {new TrustAll()};
        if (tls.cas().isEmpty()) return null; // the JVM's
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        TrustManagerFactory system = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        system.init((KeyStore) null);
        int i = 0;
        for (TrustManager tm : system.getTrustManagers())
            if (tm instanceof X509TrustManager x)
                for (X509Certificate c : x.getAcceptedIssuers()) ks.setCertificateEntry("system" + i++, c);
        for (Path ca : tls.cas()) {
            List<Certificate> certs = certificates(ca);
            if (certs.isEmpty()) throw new IOException("CA file " + ca + ": no CERTIFICATE in it");
            for (Certificate c : certs) ks.setCertificateEntry("ca" + i++, c);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        return tmf.getTrustManagers();
    }

    static List<Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
        String pem = read(file);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<Certificate> out = new ArrayList<>();
        Matcher m = PEM.matcher(pem);
        while (m.find())
            if (m.group(1).equals("CERTIFICATE")) {
                Collection<? extends Certificate> c = cf.generateCertificates(new ByteArrayInputStream(der(m.group(2))));
                out.addAll(c);
            }
        return out;
    }

    static PrivateKey privateKey(Path file, X509Certificate cert) throws IOException, GeneralSecurityException {
        Matcher m = PEM.matcher(read(file));
        while (m.find()) {
            if (m.group(1).equals("PRIVATE KEY"))
                return KeyFactory.getInstance(cert.getPublicKey().getAlgorithm()).generatePrivate(new PKCS8EncodedKeySpec(der(m.group(2))));
            if (m.group(1).endsWith("PRIVATE KEY"))
                throw new IOException("key " + file + " is " + m.group(1) + "; convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in " + file);
        }
        throw new IOException("key " + file + ": no PRIVATE KEY in it");
    }

    private static String read(Path file) throws IOException {
        return Files.readString(file, StandardCharsets.US_ASCII);
    }

    private static byte[] der(String base64) {
        return Base64.getMimeDecoder().decode(base64);
    }

    /** skip_verify: any certificate, any name (the hostname check of HTTPS is the trust manager's to do). */
    private static final class TrustAll extends X509ExtendedTrustManager {
        @Override public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) {}
        @Override public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) {}
        @Override public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {}
        @Override public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {}
        @Override public void checkClientTrusted(X509Certificate[] chain, String authType) {}
        @Override public void checkServerTrusted(X509Certificate[] chain, String authType) {}
        @Override public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
    }
}
