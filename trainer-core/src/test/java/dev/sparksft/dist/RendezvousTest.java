package dev.sparksft.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparksft.runtime.Torch;
import java.io.IOException;
import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.NoRouteToHostException;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.StringVector;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Who can reach rank 0's store, and what a stranger that reaches it can and cannot do. */
class RendezvousTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    /**
     * A non-loopback IPv4 address of this machine, if it has one: the family of 127.0.0.1, so a
     * wildcard listener of either family would accept there.
     */
    private static Optional<InetAddress> otherLocalAddress() throws SocketException {
        for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (!nic.isUp() || nic.isLoopback()) {
                continue;
            }
            for (InetAddress ip : Collections.list(nic.getInetAddresses())) {
                if (ip instanceof Inet4Address && !ip.isLoopbackAddress() && !ip.isLinkLocalAddress()) {
                    return Optional.of(ip);
                }
            }
        }
        return Optional.empty();
    }

    private static boolean accepts(InetAddress ip, int port) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(ip, port), 2000);
            return true;
        } catch (ConnectException | NoRouteToHostException | SocketTimeoutException refused) {
            return false;
        }
    }

    @Test
    void aStoreOnLoopbackIsNotReachableThroughAnotherAddressOfThisMachine() throws Exception {
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 1, TIMEOUT)) {
            int port = rv.address().port();
            assertTrue(accepts(InetAddress.getByName("127.0.0.1"), port), "the store must accept on 127.0.0.1");
            Optional<InetAddress> other = otherLocalAddress();
            assumeTrue(other.isPresent(), "this machine has no IPv4 address besides loopback: nothing to check the binding against");
            assertFalse(accepts(other.get(), port), "the store bound to 127.0.0.1 accepted a connection on "
                    + other.get().getHostAddress() + ": it listens on every interface");
            // libtorch's own client reaches it on the address it was given
            World.join(0, 1, rv.address(), "127.0.0.1", WorldTest.CPU, TIMEOUT).close();
        }
    }

    @Test
    void theSocketHandedToLibtorchOutlivesCollectionAndClosesWithTheStore() throws Exception {
        Rendezvous rv = Rendezvous.host("127.0.0.1", 1, TIMEOUT);
        int port = rv.address().port();
        // the Java channel that bound the socket is garbage now: collecting it must not close the fd
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
        }
        assertTrue(accepts(InetAddress.getByName("127.0.0.1"), port), "the listening socket died with its Java channel");
        rv.close();
        assertFalse(accepts(InetAddress.getByName("127.0.0.1"), port), "closing the store must close its socket");
    }

    @Test
    void anAddressCarriesItsNamespaceButNeverPrintsIt() {
        try (Rendezvous a = Rendezvous.host("127.0.0.1", 1, TIMEOUT);
             Rendezvous b = Rendezvous.host("127.0.0.1", 1, TIMEOUT)) {
            Rendezvous.Address address = a.address();
            assertTrue(address.namespace().matches("[0-9a-f]{32}"), address.namespace());
            assertNotEquals(address.namespace(), b.address().namespace());
            assertEquals(address, Rendezvous.Address.parse(address.encoded()));
            assertEquals("127.0.0.1:" + address.port(), address.toString());
            assertFalse(address.toString().contains(address.namespace()));
        }
        Rendezvous.Address v6 = Rendezvous.Address.parse("fd00::2:4000/" + "0f".repeat(16));
        assertEquals("fd00::2", v6.host());
        assertEquals(4000, v6.port());
        assertThrows(IllegalStateException.class, () -> Rendezvous.Address.parse("127.0.0.1:4000"));
        assertThrows(IllegalStateException.class, () -> Rendezvous.Address.parse("127.0.0.1:4000/not-hex"));
    }

    @Test
    void aStrangerWhoWritesToTheStoreStopsEveryRankFromTraining() throws Exception {
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, TIMEOUT)) {
            // what another job's rank would write when it dials this port by mistake
            Store stranger = Rendezvous.connect(rv.address(), 9, TIMEOUT);
            stranger.set("spark-sft/joined/rank-1", "1");
            List<String> errors = onTwoRanks(rv, TIMEOUT, w -> "joined");
            for (String e : errors) {
                assertTrue(e.contains("holds 1 key(s) that no rank of this job wrote"), e);
                assertFalse(e.contains(rv.address().namespace()), e);
            }
            stranger.close();
        }
    }

    @Test
    void ranksThatWorkInAnotherNamespaceNeverMeet() throws Exception {
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, Duration.ofSeconds(3))) {
            Rendezvous.Address real = rv.address();
            Rendezvous.Address guessed = new Rendezvous.Address(real.host(), real.port(), "0".repeat(32));
            List<Rendezvous.Address> addresses = List.of(real, guessed);
            List<String> errors = ranks(2, rank -> {
                DistributedException e = assertThrows(DistributedException.class,
                        () -> World.join(rank, 2, addresses.get(rank), "127.0.0.1", WorldTest.CPU, Duration.ofSeconds(3)));
                return e.getMessage();
            });
            assertTrue(errors.get(0).contains("could not join the Gloo group") && errors.get(0).contains("never joined"),
                    errors.get(0));
        }
    }

    /**
     * The limit of the namespace, pinned: the store answers listKeys to anyone that connects, so
     * a stranger that reaches the port during the join can learn the namespace. If libtorch stops
     * answering it, this test fails and the docs (Rendezvous, README Security) can say more.
     */
    @Test
    void aStrangerThatCanConnectCanListTheNamespace() throws Exception {
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 1, TIMEOUT);
             World w = World.join(0, 1, rv.address(), "127.0.0.1", WorldTest.CPU, TIMEOUT)) {
            Store stranger = Rendezvous.connect(rv.address(), 9, TIMEOUT);
            List<String> keys = new ArrayList<>();
            try (StringVector listed = stranger.listKeys()) {
                for (long i = 0; i < listed.size(); i++) {
                    keys.add(listed.get(i).getString());
                }
            }
            stranger.close();
            assertTrue(keys.stream().anyMatch(k -> k.startsWith(rv.address().namespace() + "/")), keys.toString());
        }
    }

    private static List<String> onTwoRanks(Rendezvous rv, Duration timeout, java.util.function.Function<World, String> body)
            throws Exception {
        return ranks(2, rank -> {
            try (World w = World.join(rank, 2, rv.address(), "127.0.0.1", WorldTest.CPU, timeout)) {
                return body.apply(w);
            } catch (DistributedException e) {
                return e.getMessage();
            }
        });
    }

    private static List<String> ranks(int size, java.util.function.IntFunction<String> body) throws Exception {
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(size);
        try {
            List<java.util.concurrent.Future<String>> futures = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rank = r;
                futures.add(pool.submit(() -> body.apply(rank)));
            }
            List<String> out = new ArrayList<>();
            for (java.util.concurrent.Future<String> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
