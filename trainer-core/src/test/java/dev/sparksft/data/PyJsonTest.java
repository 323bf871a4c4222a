package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Python's json and str() spellings; every expected string is what CPython 3.11 printed for the value. */
class PyJsonTest {
    @Test
    void floatsAsPythonsRepr() {
        String[][] cases = {
            {"0.1", "0.1"}, {"0.3333333333333333", "0.3333333333333333"}, {"1e-5", "1e-05"}, {"0.0001", "0.0001"},
            {"1e16", "1e+16"}, {"1e15", "1000000000000000.0"}, {"123456789.123", "123456789.123"},
            {"5e-324", "5e-324"}, {"1.7976931348623157e308", "1.7976931348623157e+308"}, {"2.5", "2.5"},
            {"-0.0", "-0.0"}, {"0.30000000000000004", "0.30000000000000004"}, {"1e22", "1e+22"},
            {"1.5e-10", "1.5e-10"}, {"100.0", "100.0"}, {"1.5e-323", "1.5e-323"}, {"4.35", "4.35"},
            {"9.999999999999999e22", "1e+23"}};
        for (String[] c : cases) {
            assertEquals(c[1], PyJson.floatRepr(Double.parseDouble(c[0])), c[0]);
        }
    }

    @Test
    void dumpsWithPythonsSeparatorsAndEscapes() {
        assertEquals("{\"a\": [1, 2.0, {\"b\": null, \"c\": true}], \"s\": \"q\\\"\\\\\\n\\u0001\u007f é 😀\", "
                        + "\"e\": [], \"o\": {}}",
                PyJson.dumps(PyJson.loads("{\"a\": [1, 2.0, {\"b\": null, \"c\": true}], "
                        + "\"s\": \"q\\\"\\\\\\n\\u0001\u007f é 😀\", \"e\": [], \"o\": {}}")));
        assertEquals("{\n    \"a\": [\n        1,\n        {\n            \"b\": []\n        }\n    ],\n    \"c\": {}\n}",
                PyJson.dumps(PyJson.loads("{\"a\":[1,{\"b\":[]}],\"c\":{}}"), 4));
    }

    @Test
    void strOfNestedValues() {
        assertEquals("{'k': \"it's\", 'l': ['a\"b', 'x\\'y\"', None, False, 1.0, 'tab\\tnl\\n\\x00é']}",
                PyJson.str(PyJson.loads("{\"k\": \"it's\", \"l\": [\"a\\\"b\", \"x'y\\\"\", null, false, 1.0, "
                        + "\"tab\\tnl\\n\\u0000é\"]}")));
    }

    @Test
    void loadsRefusesWhatPythonRefusesAndTruthiness() {
        assertNull(PyJson.loads(""));
        assertNull(PyJson.loads("[1] x"));
        assertNull(PyJson.loads("{'a': 1}"));
        assertEquals("NaN", PyJson.dumps(PyJson.loads("NaN")));
        assertFalse(PyJson.truthy(PyJson.loads("0.0")));
        assertFalse(PyJson.truthy(PyJson.loads("[]")));
        assertTrue(PyJson.truthy(PyJson.loads("\"0\"")));
    }
}
