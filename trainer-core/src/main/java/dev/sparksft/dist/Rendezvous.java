package dev.sparksft.dist;

import dev.sparksft.UserError;
import java.io.IOException;
import java.lang.reflect.Method;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.nio.channels.ServerSocketChannel;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.IntOptional;
import org.bytedeco.pytorch.PrefixStore;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;

/**
 * Rank 0's key-value store, where the ranks of a process group find each other: rank 0 opens a
 * {@code TCPStore} server on a free port of one address and publishes {@link #address()} (through
 * Spark's {@code BarrierTaskContext.allGather}, or any other channel); every rank, rank 0 included,
 * then connects to it as a client ({@link World#join}). The server lives as long as this object,
 * so rank 0 keeps it open until training ends.
 *
 * <p>Who can talk to the store. libtorch's TCPStore has no authentication: any process that
 * reaches the port may read, write and list keys. Two things narrow that down:
 * <ul>
 *   <li>The server listens on the one address it is given (the executor's, loopback in local
 *   mode), not on every interface: libtorch's own listen binds the wildcard address whatever host
 *   it is passed, so the socket is bound here in Java and handed to libtorch
 *   ({@code TCPStoreOptions.masterListenFd}).</li>
 *   <li>Every attempt gets a fresh random namespace (128 bits), handed out with the address. The
 *   ranks' process group works in it ({@code PrefixStore}), so keys written by anyone else, such
 *   as another job that dials a wrong port, are never read; and a rank refuses to start when the
 *   store holds keys outside the namespace at the moment the group has formed.</li>
 * </ul>
 * The namespace is not a password: the server answers {@code listKeys} to any client, so a
 * process that can connect while the job runs can learn it (pinned by a test). The boundary
 * against a deliberate attacker is the network: an executor address reachable only from the
 * cluster, and Spark's RPC authentication and encryption for the channel that carries the address
 * and namespace (README, "Security").
 */
public final class Rendezvous implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final TCPStore server;
    private final Address address;

    /**
     * What a rank needs to join: where rank 0's store listens, and this attempt's key namespace
     * (32 hex digits). {@link #toString()} leaves the namespace out, so error messages and logs
     * never carry it; {@link #encoded()} and {@link #parse} carry it over a channel of the
     * caller's choice.
     */
    public record Address(String host, int port, String namespace) {
        public Address {
            if (host.isEmpty() || port <= 0 || port > 65535 || !namespace.matches("[0-9a-f]{32}")) {
                throw new IllegalStateException("not a rendezvous address: host '" + host + "', port " + port
                        + ", a namespace of " + namespace.length() + " characters");
            }
        }

        /** "host:port/namespace": {@link #parse} reads it back. */
        public String encoded() {
            return host + ":" + port + "/" + namespace;
        }

        /** The {@link #encoded()} form back; host may be an IPv6 literal (the last ':' ends it). */
        public static Address parse(String text) {
            int slash = text.lastIndexOf('/');
            int colon = slash < 0 ? -1 : text.lastIndexOf(':', slash);
            if (colon <= 0) {
                throw new IllegalStateException("rendezvous address of " + text.length()
                        + " characters is not host:port/namespace");
            }
            int port;
            try {
                port = Integer.parseInt(text.substring(colon + 1, slash));
            } catch (NumberFormatException e) {
                throw new IllegalStateException("rendezvous address has no port number before its namespace", e);
            }
            return new Address(text.substring(0, colon), port, text.substring(slash + 1));
        }

        @Override
        public String toString() {
            return host + ":" + port;
        }
    }

    private Rendezvous(TCPStore server, Address address) {
        this.server = server;
        this.address = address;
    }

    /**
     * Opens the store on a free port of {@code host}, which must be an address of this machine
     * that the other ranks can reach, and listens there only.
     */
    public static Rendezvous host(String host, int worldSize, Duration timeout) {
        int port;
        int fd;
        ServerSocketChannel listener = null;
        try {
            InetAddress ip = InetAddress.getByName(host);
            listener = ServerSocketChannel.open(ip instanceof Inet6Address ? StandardProtocolFamily.INET6
                    : StandardProtocolFamily.INET);
            listener.bind(new InetSocketAddress(ip, 0));
            port = ((InetSocketAddress) listener.getLocalAddress()).getPort();
            fd = fileDescriptor(listener);
        } catch (IOException | RuntimeException e) {
            closeQuietly(listener);
            if (e instanceof UserError u) {
                throw u;
            }
            throw new DistributedException("could not listen for the rendezvous on " + host
                    + " (it must be an address of this machine that the other ranks reach): " + e, e);
        }
        // From here on the socket is libtorch's: Socket::listenFromFd wraps the fd in a SocketImpl,
        // whose destructor closes it when the server stops (or when the constructor below fails
        // after the hand-over). Java must never close it (tried: the store's thread then polls a dead fd,
        // throws, and the JVM aborts), so `listener` is dropped unclosed: JDK 17's ServerSocketChannelImpl
        // and its FileDescriptor register no Cleaner, and a collected channel leaves the fd open
        // (RendezvousTest collects it and connects afterwards).
        TCPStoreOptions options = new TCPStoreOptions();
        options.port((short) port).isServer(true).waitWorkers(false).useLibUV(false)
                .numWorkers(new SizeTPointer(1).put(worldSize))
                .masterListenFd(new IntOptional(fd))
                .timeout(new Milliseconds(timeout.toMillis()));
        byte[] secret = new byte[16];
        RANDOM.nextBytes(secret);
        Address address = new Address(host, port, HexFormat.of().formatHex(secret));
        try {
            return new Rendezvous(new TCPStore(host, options), address);
        } catch (RuntimeException e) {
            throw new DistributedException("could not open the rendezvous store on " + address + ": " + e.getMessage(), e);
        }
    }

    /**
     * The number of the socket's file descriptor, which libtorch takes over. The JDK has no public
     * way to it: the channel implements {@code sun.nio.ch.SelChImpl#getFDVal}, reachable with
     * {@code --add-opens=java.base/sun.nio.ch=ALL-UNNAMED}, which Spark's launcher gives every
     * driver and executor on Java 17 (its JavaModuleOptions) and the build gives the tests.
     */
    private static int fileDescriptor(ServerSocketChannel channel) {
        try {
            Method getFdVal = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal");
            getFdVal.setAccessible(true);
            return (Integer) getFdVal.invoke(channel);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new UserError("the rendezvous needs the JVM option --add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
                    + "(Spark's launcher adds it to drivers and executors; add it to a plain java command): " + e);
        }
    }

    private static void closeQuietly(ServerSocketChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // nothing was handed over yet; the bind failure is what gets reported
            }
        }
    }

    /** Where the store listens and this attempt's namespace, for the other ranks. */
    public Address address() {
        return address;
    }

    /** A client of the whole store at {@code address}; fails after {@code timeout} if nobody answers there. */
    static Store connect(Address address, int rank, Duration timeout) {
        TCPStoreOptions options = new TCPStoreOptions();
        options.port((short) address.port()).isServer(false).waitWorkers(false)
                .useLibUV(false).timeout(new Milliseconds(timeout.toMillis()));
        try (TCPStore raw = new TCPStore(address.host(), options)) {
            // The process group keeps the store as a c10::intrusive_ptr. A store made with `new` is a raw
            // pointer that the bindings adopt without a reference of their own (intrusive_ptr::reclaim),
            // so the group's references would later free it under Java's feet. clone() is a second
            // client of the same server made by make_intrusive: its references are counted correctly.
            return raw.clone();
        } catch (RuntimeException e) {
            throw new DistributedException("rank " + rank + " could not reach rank 0's rendezvous store at " + address
                    + " within " + timeout.toSeconds() + " s: " + e.getMessage(), e);
        }
    }

    /**
     * {@code client}'s view of the store inside {@code namespace}: every key it reads or writes is
     * "namespace/key". The same care as in {@link #connect}: the group gets a make_intrusive clone
     * (PrefixStore::clone wraps a fresh clone of the client), never the PrefixStore made here.
     */
    static Store scoped(Store client, String namespace) {
        try (PrefixStore prefixed = new PrefixStore(namespace, client)) {
            return prefixed.clone();
        }
    }

    /** How many keys of the whole store lie outside {@code namespace} (written by a client that is not a rank). */
    static int foreignKeys(Store client, String namespace) {
        try (StringVector keys = client.listKeys()) {
            int foreign = 0;
            for (long i = 0; i < keys.size(); i++) {
                if (!keys.get(i).getString().startsWith(namespace + "/")) {
                    foreign++;
                }
            }
            return foreign;
        }
    }

    @Override
    public void close() {
        server.close();
    }
}
