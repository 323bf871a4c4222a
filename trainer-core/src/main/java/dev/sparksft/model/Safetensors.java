package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import dev.sparksft.runtime.DiskWrites;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of
 * JSON ({@code name -> {dtype, shape, data_offsets}} plus optional {@code __metadata__}), then
 * the raw little-endian tensor bytes.
 *
 * <p>The header is validated before anything is allocated: its length is bounded by the file,
 * every tensor's byte range lies inside the data section, matches dtype x shape exactly and
 * overlaps no other tensor. A malformed or hostile file therefore fails with the tensor's name
 * instead of crashing the JVM or allocating memory the file does not back.
 */
public final class Safetensors {
    /** HF's own reader refuses headers over 100 MB. */
    static final long MAX_HEADER_BYTES = 100L << 20;
    private static final int IO_CHUNK = 16 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private Safetensors() {}

    /** One tensor's header entry; {@code begin}/{@code end} are offsets into the data section. */
    public record Entry(String name, Dtype dtype, long[] shape, long begin, long end) {
        public long numElements() {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }
    }

    /** A validated header: entries in file order, metadata, and where the data section starts. */
    public record Header(Path file, Map<String, Entry> entries, Map<String, String> metadata, long dataStart) {}

    /** Reads and validates the header of {@code file}. */
    public static Header readHeader(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = ch.size();
            if (fileSize < 8) {
                throw corrupt(file, "file is " + fileSize + " bytes, shorter than the 8-byte header length");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > fileSize - 8) {
                throw corrupt(file, "header length " + Long.toUnsignedString(headerLen) + " is outside 1.."
                        + Math.min(MAX_HEADER_BYTES, fileSize - 8) + " (file is " + fileSize + " bytes)");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            String json = new String(headerBuf.array(), StandardCharsets.UTF_8);
            return parseHeader(file, json, 8 + headerLen, fileSize - 8 - headerLen);
        }
    }

    private static Header parseHeader(Path file, String json, long dataStart, long dataLen) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw corrupt(file, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw corrupt(file, "header is not a JSON object");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) {
                f.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            entries.put(f.getKey(), parseEntry(file, f.getKey(), f.getValue(), dataLen));
        }
        List<Entry> byOffset = new ArrayList<>(entries.values());
        byOffset.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < byOffset.size(); i++) {
            Entry prev = byOffset.get(i - 1);
            Entry cur = byOffset.get(i);
            if (cur.begin() < prev.end()) {
                throw corrupt(file, "tensor '" + cur.name() + "' bytes [" + cur.begin() + ", " + cur.end()
                        + ") overlap tensor '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + ")");
            }
        }
        return new Header(file, entries, metadata, dataStart);
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataLen) {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw corrupt(file, where + " entry is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        JsonNode shapeNode = node.get("shape");
        JsonNode offsetsNode = node.get("data_offsets");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw corrupt(file, where + " has no string 'dtype'");
        }
        Dtype dtype;
        try {
            dtype = Dtype.ofTag(dtypeNode.asText());
        } catch (IllegalArgumentException e) {
            throw corrupt(file, where + ": " + e.getMessage());
        }
        if (shapeNode == null || !shapeNode.isArray() || shapeNode.size() > 8) {
            throw corrupt(file, where + " 'shape' must be an array of at most 8 dimensions");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw corrupt(file, where + " shape " + shapeNode + " has a dimension that is not a non-negative integer");
            }
            shape[i] = d.asLong();
        }
        if (offsetsNode == null || !offsetsNode.isArray() || offsetsNode.size() != 2
                || !offsetsNode.get(0).isIntegralNumber() || !offsetsNode.get(1).isIntegralNumber()) {
            throw corrupt(file, where + " 'data_offsets' must be [begin, end]");
        }
        long begin = offsetsNode.get(0).asLong();
        long end = offsetsNode.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLen) {
            throw corrupt(file, where + " data_offsets [" + begin + ", " + end + "] lie outside the data section of "
                    + dataLen + " bytes");
        }
        Entry e = new Entry(name, dtype, shape, begin, end);
        long expected;
        try {
            expected = Math.multiplyExact(e.numElements(), dtype.numBytes);
        } catch (ArithmeticException overflow) {
            throw corrupt(file, where + " shape " + shapeNode + " overflows");
        }
        if (expected != end - begin) {
            throw corrupt(file, where + " holds " + (end - begin) + " bytes but dtype " + dtype + " x shape "
                    + shapeNode + " needs " + expected);
        }
        return e;
    }

    /** Reads one tensor (in its stored dtype) of a validated header. */
    public static Tensor readTensor(Header header, Entry e) throws IOException {
        Tensor t = torch.empty(e.shape(), new TensorOptions(e.dtype().scalarType), new MemoryFormatOptional());
        long numBytes = e.end() - e.begin();
        if (numBytes == 0) {
            return t;
        }
        BytePointer dst = new BytePointer(t.data_ptr()).capacity(numBytes);
        try (FileChannel ch = FileChannel.open(header.file(), StandardOpenOption.READ)) {
            for (long off = 0; off < numBytes; off += IO_CHUNK) {
                long len = Math.min(IO_CHUNK, numBytes - off);
                ByteBuffer window = dst.position(off).limit(off + len).asByteBuffer();
                readFully(ch, window, header.dataStart() + e.begin() + off);
            }
        }
        return t;
    }

    /**
     * Writes {@code tensors} (each already in the dtype it should be stored in) to {@code file},
     * in the given order, with {@code __metadata__ = {"format": "pt"}} like transformers.
     *
     * @return the CRC32C of the file's bytes (a checkpoint's checksums.json), computed as they are written
     */
    public static long write(Path file, Map<String, Tensor> tensors) throws IOException {
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        tensors.forEach((n, t) -> dtypes.put(n, Dtype.of(t.scalar_type())));
        return write(file, tensors, dtypes);
    }

    /**
     * Writes {@code tensors}, each converted to its dtype in {@code dtypes} one at a time as it is
     * written (a model is never held twice to be saved), in the given order.
     */
    public static long write(Path file, Map<String, Tensor> tensors, Map<String, Dtype> dtypes) throws IOException {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        tensors.forEach((n, t) -> shapes.put(n, t.sizes().vec().get()));
        return write(file, shapes, dtypes, tensors::get);
    }

    /**
     * Writes the tensors named in {@code shapes}, in that order, each made by {@code produce} only
     * when its turn comes and converted to its dtype in {@code dtypes}: what is written never has to
     * be in memory at once (a random 8B model, a model saved from its training copy).
     */
    public static long write(Path file, Map<String, long[]> shapes, Map<String, Dtype> dtypes,
                             java.util.function.Function<String, Tensor> produce) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (Map.Entry<String, long[]> en : shapes.entrySet()) {
            Dtype dtype = dtypes.get(en.getKey());
            ObjectNode node = header.putObject(en.getKey());
            node.put("dtype", dtype.name());
            ArrayNode shape = node.putArray("shape");
            long numel = 1;
            for (long d : en.getValue()) {
                shape.add(d);
                numel *= d;
            }
            long n = numel * dtype.numBytes;
            node.putArray("data_offsets").add(offset).add(offset + n);
            offset += n;
        }
        header.putObject("__metadata__").put("format", "pt");
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8; // data section 8-byte aligned, padded with spaces
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        // the bytes are in memory once, here: checksumming them costs a quarter of reading the file back
        CRC32C crc = new CRC32C();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            crc.update(head.flip().duplicate());
            writeFully(ch, head);
            for (String name : shapes.keySet()) {
                try (PointerScope scope = new PointerScope()) {   // the converted copy lives for this tensor only
                    // bytes are read from host memory, in the stored dtype
                    Tensor t = produce.apply(name).to(dtypes.get(name).scalarType).cpu().contiguous();
                    long numBytes = t.nbytes();
                    BytePointer src = new BytePointer(t.data_ptr()).capacity(numBytes);
                    for (long off = 0; off < numBytes; off += IO_CHUNK) {
                        long len = Math.min(IO_CHUNK, numBytes - off);
                        ByteBuffer chunk = src.position(off).limit(off + len).asByteBuffer();
                        crc.update(chunk.duplicate());
                        writeFully(ch, chunk);
                    }
                }
            }
        } catch (IOException e) {
            throw DiskWrites.failed(file, e);   // a full disk says "No space left on device", not which file
        }
        return crc.getValue();
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file at byte " + pos);
            }
            pos += n;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    private static UserError corrupt(Path file, String what) {
        return new UserError("corrupt safetensors file " + file + ": " + what);
    }
}
