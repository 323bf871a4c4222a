package dev.sparksft.dist;

import dev.sparksft.UserError;
import java.time.Duration;
import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;

/**
 * Rank 0's key-value store, where the ranks of a process group find each other: rank 0 opens a
 * {@code TCPStore} server on a free port and publishes {@link #address()} (through Spark's
 * {@code BarrierTaskContext.allGather}, or any other channel); every rank, rank 0 included,
 * then connects to it as a client ({@link World#join}). The server lives as long as this object,
 * so rank 0 keeps it open until training ends.
 */
public final class Rendezvous implements AutoCloseable {
    private final TCPStore server;
    private final String host;

    private Rendezvous(TCPStore server, String host) {
        this.server = server;
        this.host = host;
    }

    /** Opens the store on {@code host} (an address the other ranks can reach) and a free port. */
    public static Rendezvous host(String host, int worldSize, Duration timeout) {
        TCPStoreOptions options = new TCPStoreOptions();
        options.port((short) 0).isServer(true).waitWorkers(false).useLibUV(false)
                .numWorkers(new SizeTPointer(1).put(worldSize))
                .timeout(new Milliseconds(timeout.toMillis()));
        try {
            return new Rendezvous(new TCPStore(host, options), host);
        } catch (RuntimeException e) {
            throw new DistributedException("could not open the rendezvous store on " + host + ": " + e.getMessage(), e);
        }
    }

    /** "host:port" of the store. */
    public String address() {
        return host + ":" + Short.toUnsignedInt(server.getPort());
    }

    /** A client of the store at {@code address}; fails after {@code timeout} if nobody answers there. */
    static Store connect(String address, int rank, Duration timeout) {
        int colon = address.lastIndexOf(':');
        if (colon <= 0) {
            throw new UserError("rendezvous address '" + address + "' is not host:port");
        }
        TCPStoreOptions options = new TCPStoreOptions();
        options.port((short) Integer.parseInt(address.substring(colon + 1))).isServer(false).waitWorkers(false)
                .useLibUV(false).timeout(new Milliseconds(timeout.toMillis()));
        try (TCPStore raw = new TCPStore(address.substring(0, colon), options)) {
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

    @Override
    public void close() {
        server.close();
    }
}
