package dev.sparksft.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.DelegatingSeekableInputStream;
import org.apache.parquet.io.InputFile;
import org.apache.parquet.io.MessageColumnIO;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.io.SeekableInputStream;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

/**
 * The rows of a Parquet file as JSON objects, the shape the converters read: a column per
 * field, strings as text, numbers and booleans as themselves, LIST columns (Spark's and
 * pandas' three-level lists, and the older two-level ones) as arrays, MAP columns as objects,
 * structs as objects; null fields are left out, as Spark's {@code to_json} does. Binary columns
 * without a string annotation become base64 text.
 */
final class ParquetRows {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private ParquetRows() {}

    static List<DatasetRow> rows(int dataset, String file, String name, byte[] bytes) {
        List<DatasetRow> out = new ArrayList<>();
        try (ParquetFileReader reader = ParquetFileReader.open(new BytesInputFile(bytes),
                ParquetReadOptions.builder().build())) {
            MessageType schema = reader.getFooter().getFileMetaData().getSchema();
            MessageColumnIO io = new ColumnIOFactory().getColumnIO(schema);
            long row = 0;
            PageReadStore group;
            while ((group = reader.readNextRowGroup()) != null) {
                RecordReader<Group> records = io.getRecordReader(group, new GroupRecordConverter(schema));
                for (long i = 0; i < group.getRowCount(); i++, row++) {
                    out.add(new DatasetRow(dataset, file, row, name + " row " + (row + 1), object(records.read()), null));
                }
            }
        } catch (IOException | RuntimeException e) {
            out.add(DatasetRow.malformed(dataset, file, "dataset file " + file + " is not a readable Parquet file: " + e));
        }
        return out;
    }

    private static ObjectNode object(Group g) {
        ObjectNode o = NODES.objectNode();
        GroupType type = g.getType();
        for (int f = 0; f < type.getFieldCount(); f++) {
            Type field = type.getType(f);
            int count = g.getFieldRepetitionCount(f);
            if (field.isRepetition(Type.Repetition.REPEATED)) {          // a bare repeated field is a list
                ArrayNode a = o.putArray(field.getName());
                for (int i = 0; i < count; i++) {
                    a.add(value(g, f, i, field));
                }
            } else if (count > 0) {
                o.set(field.getName(), value(g, f, 0, field));
            }
        }
        return o;
    }

    private static JsonNode value(Group g, int field, int index, Type type) {
        if (type.isPrimitive()) {
            return primitive(g, field, index, type.asPrimitiveType());
        }
        Group inner = g.getGroup(field, index);
        LogicalTypeAnnotation logical = type.getLogicalTypeAnnotation();
        if (logical instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation) {
            return list(inner);
        }
        if (logical instanceof LogicalTypeAnnotation.MapLogicalTypeAnnotation) {
            return map(inner);
        }
        return object(inner);
    }

    /**
     * A LIST group holds one repeated field; its element is that field itself when it is a
     * primitive, a group of several fields, or named "array" / "*_tuple" (the two-level forms),
     * and otherwise the repeated group's only field (the standard three-level form).
     */
    private static ArrayNode list(Group listGroup) {
        ArrayNode a = NODES.arrayNode();
        Type repeated = listGroup.getType().getType(0);
        int n = listGroup.getFieldRepetitionCount(0);
        boolean elementIsRepeated = repeated.isPrimitive() || repeated.asGroupType().getFieldCount() > 1
                || repeated.getName().equals("array") || repeated.getName().endsWith("_tuple");
        for (int i = 0; i < n; i++) {
            if (elementIsRepeated) {
                a.add(value(listGroup, 0, i, repeated));
            } else {
                Group wrapper = listGroup.getGroup(0, i);
                a.add(wrapper.getFieldRepetitionCount(0) == 0 ? NODES.nullNode()
                        : value(wrapper, 0, 0, wrapper.getType().getType(0)));
            }
        }
        return a;
    }

    private static ObjectNode map(Group mapGroup) {
        ObjectNode o = NODES.objectNode();
        for (int i = 0; i < mapGroup.getFieldRepetitionCount(0); i++) {
            Group kv = mapGroup.getGroup(0, i);
            JsonNode key = value(kv, 0, 0, kv.getType().getType(0));
            o.set(key.asText(), kv.getFieldRepetitionCount(1) == 0 ? NODES.nullNode()
                    : value(kv, 1, 0, kv.getType().getType(1)));
        }
        return o;
    }

    private static JsonNode primitive(Group g, int field, int index, PrimitiveType type) {
        LogicalTypeAnnotation logical = type.getLogicalTypeAnnotation();
        return switch (type.getPrimitiveTypeName()) {
            case BOOLEAN -> NODES.booleanNode(g.getBoolean(field, index));
            case INT32 -> logical instanceof LogicalTypeAnnotation.DecimalLogicalTypeAnnotation d
                    ? NODES.numberNode(java.math.BigDecimal.valueOf(g.getInteger(field, index), d.getScale()))
                    : NODES.numberNode(g.getInteger(field, index));
            case INT64 -> logical instanceof LogicalTypeAnnotation.DecimalLogicalTypeAnnotation d
                    ? NODES.numberNode(java.math.BigDecimal.valueOf(g.getLong(field, index), d.getScale()))
                    : NODES.numberNode(g.getLong(field, index));
            case FLOAT -> NODES.numberNode(g.getFloat(field, index));
            case DOUBLE -> NODES.numberNode(g.getDouble(field, index));
            case BINARY, FIXED_LEN_BYTE_ARRAY -> logical instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                    || logical instanceof LogicalTypeAnnotation.EnumLogicalTypeAnnotation
                    || logical instanceof LogicalTypeAnnotation.JsonLogicalTypeAnnotation
                    ? NODES.textNode(g.getString(field, index))
                    : NODES.textNode(Base64.getEncoder().encodeToString(g.getBinary(field, index).getBytes()));
            case INT96 -> NODES.textNode(Base64.getEncoder().encodeToString(g.getInt96(field, index).getBytes()));
        };
    }

    /** A Parquet file held in memory (a dataset file's bytes), for the reader's random access. */
    private record BytesInputFile(byte[] bytes) implements InputFile {
        @Override
        public long getLength() {
            return bytes.length;
        }

        @Override
        public SeekableInputStream newStream() {
            ByteArrayInputStream in = new ByteArrayInputStream(bytes);
            return new DelegatingSeekableInputStream(in) {
                @Override
                public long getPos() {
                    return bytes.length - in.available();
                }

                @Override
                public void seek(long newPos) {
                    in.reset();                    // back to 0 (the mark of a fresh stream)
                    in.skip(newPos);
                }
            };
        }
    }
}
