package dev.sparksft.config;

import dev.sparksft.UserError;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A run's configuration: one flat LLaMA-Factory-style YAML file plus {@code key=value} overrides,
 * split into the argument records that own each key. Every problem (unknown key, key not
 * implemented yet, wrong type, invalid value) is collected and reported at once.
 */
public record SftConfig(ModelArguments model, DataArguments data, TrainingArguments training,
                        FinetuningArguments finetuning, GeneratingArguments generating, DistributedArguments distributed) {
    private static final Logger LOG = LoggerFactory.getLogger(SftConfig.class);
    private static final Set<String> LOGGED = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final List<Class<? extends Record>> SECTIONS = List.of(ModelArguments.class, DataArguments.class,
            TrainingArguments.class, FinetuningArguments.class, GeneratingArguments.class, DistributedArguments.class);

    /** Reads {@code yamlFile} and applies {@code overrides} ("key=value", value parsed as YAML). */
    public static SftConfig load(Path yamlFile, List<String> overrides) throws IOException {
        return fromValues(loadValues(yamlFile, overrides));
    }

    /**
     * {@link #load(Path, List)} that also checks {@code template} with {@code templateCheck} (the
     * template layer's {@code Templates::problem}, which the shells pass in: the problem with a
     * name, empty when it is a built-in template), collected with the rest.
     */
    public static SftConfig load(Path yamlFile, List<String> overrides,
                                 Function<String, Optional<String>> templateCheck) throws IOException {
        return fromValues(loadValues(yamlFile, overrides), templateCheck);
    }

    /** The flat key/values of {@code yamlFile} with {@code overrides} applied, before binding. */
    public static ObjectNode loadValues(Path yamlFile, List<String> overrides) throws IOException {
        String text;
        try {
            text = Files.readString(yamlFile);
        } catch (NoSuchFileException e) {
            throw new UserError("config file " + yamlFile + " does not exist");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new UserError("config file " + yamlFile + " is not UTF-8 text; save it as UTF-8");
        }
        return applyOverrides(YamlValues.mapping("config file " + yamlFile, text), overrides);
    }

    static ObjectNode applyOverrides(ObjectNode values, List<String> overrides) {
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) {
                throw new UserError("override '" + o + "' is not key=value (for example cutoff_len=1024)");
            }
            values.set(o.substring(0, eq).strip(), YamlValues.value(o, o.substring(eq + 1)));
        }
        return values;
    }

    /** Binds flat key/values onto the argument records (the template name is checked when it is used). */
    public static SftConfig fromValues(ObjectNode values) {
        return fromValues(values, null);
    }

    /**
     * Binds flat key/values onto the argument records; {@code templateCheck} (null: not checked
     * here) says what is wrong with the name {@code template} gives, if anything.
     */
    public static SftConfig fromValues(ObjectNode values, Function<String, Optional<String>> templateCheck) {
        List<String> problems = new ArrayList<>();
        Set<String> owned = new LinkedHashSet<>();
        SECTIONS.forEach(s -> owned.addAll(keysOf(s)));
        Set<String> known = new LinkedHashSet<>(owned);
        known.addAll(ConfigKeys.all().keySet());
        for (Iterator<String> it = values.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (owned.contains(key)) {
                continue;
            }
            ConfigKeys.Decision d = ConfigKeys.of(key);
            if (d == null) {
                problems.add(key + ": unknown key" + Suggest.didYouMean(key, known));
            } else if (d.kind() == ConfigKeys.Kind.NO_EFFECT) {
                logOnce(key + " has no effect here: " + d.reason());
            } else if (d.isDefault(values.get(key))) {
                logOnce(key + ": " + values.get(key) + " is LLaMA-Factory's default, which asks for nothing here");
            } else {
                problems.add(key + ": " + values.get(key) + " is not supported: " + d.reason());
            }
        }
        Map<Class<?>, Object> bound = new LinkedHashMap<>();
        for (Class<? extends Record> section : SECTIONS) {
            boolean typed = true;   // no type error: the section was constructed (or refused its values)
            try {
                Object b = bind(section, values, problems);
                typed = b != null;
                bound.put(section, b);
            } catch (ConfigProblems e) {
                problems.addAll(e.problems());
            }
            if (section == DataArguments.class && templateCheck != null && typed) {
                JsonNode template = values.get("template");
                templateCheck.apply(template == null || template.isNull() ? null : template.asText())
                        .ifPresent(problems::add);
            }
        }
        if (bound.get(FinetuningArguments.class) instanceof FinetuningArguments ft && ft.layerwise()
                && bound.get(TrainingArguments.class) instanceof TrainingArguments t
                && bound.get(DistributedArguments.class) instanceof DistributedArguments d) {
            problems.addAll(layerwiseProblems(ft, t, d));
        }
        ConfigProblems.throwIfAny(problems);
        return new SftConfig((ModelArguments) bound.get(ModelArguments.class), (DataArguments) bound.get(DataArguments.class),
                (TrainingArguments) bound.get(TrainingArguments.class),
                (FinetuningArguments) bound.get(FinetuningArguments.class),
                (GeneratingArguments) bound.get(GeneratingArguments.class),
                (DistributedArguments) bound.get(DistributedArguments.class));
    }

    /**
     * What layer-wise GaLore/APOLLO cannot run with, with LLaMA-Factory's reasons: it steps each
     * tensor inside the backward pass, so a gradient is never summed over micro-batches or ranks.
     * (The Spark job, distributed whatever its world_size, is refused in its run checks.)
     */
    static List<String> layerwiseProblems(FinetuningArguments ft, TrainingArguments t, DistributedArguments d) {
        String key = ft.layerwiseKey();
        String method = ft.useGalore() ? "GaLore" : "APOLLO";
        String off = " or set " + key + ": false";
        List<String> p = new ArrayList<>();
        if (t.gradientAccumulationSteps() != 1) {
            p.add("gradient_accumulation_steps: " + t.gradientAccumulationSteps() + " with " + key + ": true: Per-layer "
                    + method + " does not support gradient accumulation (LLaMA-Factory): each tensor is stepped as soon "
                    + "as one micro-batch's backward has made its gradient; set gradient_accumulation_steps: 1 (raise "
                    + "per_device_train_batch_size instead)" + off);
        }
        if (d.worldSize() != 1) {
            p.add("world_size: " + d.worldSize() + " with " + key + ": true: Distributed training does not support "
                    + "layer-wise " + method + " (LLaMA-Factory): each tensor is stepped inside the backward pass, before "
                    + "its gradient could be summed over the ranks; set world_size: 1 and train with scripts/sft train" + off);
        }
        if (t.deepspeed() != null) {
            p.add("deepspeed: " + t.deepspeed() + " with " + key + ": true: GaLore and APOLLO are incompatible with "
                    + "DeepSpeed yet (LLaMA-Factory); layer-wise steps need one process holding every gradient and "
                    + "optimizer state; remove deepspeed" + off);
        }
        return p;
    }

    /** Each key's note once per process: executors bind the same configuration many times. */
    private static void logOnce(String note) {
        if (LOGGED.add(note)) {
            LOG.info(note);
        }
    }

    private static List<String> keysOf(Class<? extends Record> section) {
        return Arrays.stream(section.getRecordComponents())
                .map(c -> c.getAccessor().getAnnotation(JsonProperty.class) != null
                        ? c.getAccessor().getAnnotation(JsonProperty.class).value()
                        : c.getAnnotation(JsonProperty.class) != null ? c.getAnnotation(JsonProperty.class).value() : c.getName())
                .toList();
    }

    /** Converts each owned key to its component's type (collecting type errors), then constructs. */
    private static <T extends Record> T bind(Class<T> section, ObjectNode values, List<String> problems) {
        RecordComponent[] comps = section.getRecordComponents();
        List<String> keys = keysOf(section);
        Object[] args = new Object[comps.length];
        boolean typeErrors = false;
        for (int i = 0; i < comps.length; i++) {
            JsonNode v = values.get(keys.get(i));
            // an explicit null is a value of its own for enable_thinking (Python's None), a default for the rest
            if (v == null || (v.isNull() && comps[i].getType() != DataArguments.Thinking.class)) {
                continue;
            }
            try {
                args[i] = convert(v, comps[i]);
            } catch (IllegalArgumentException e) {
                problems.add(keys.get(i) + ": expected " + describe(comps[i]) + ", got " + v);
                typeErrors = true;
            }
        }
        if (typeErrors) {
            return null;
        }
        try {
            Class<?>[] types = Arrays.stream(comps).map(RecordComponent::getType).toArray(Class<?>[]::new);
            return section.getDeclaredConstructor(types).newInstance(args);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof UserError user) {
                throw user instanceof ConfigProblems cp ? cp : new ConfigProblems(List.of(user.getMessage()));
            }
            throw new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Object convert(JsonNode v, RecordComponent c) {
        if (c.getType() == DataArguments.Thinking.class) {
            if (!v.isNull() && !v.isBoolean()) {
                throw new IllegalArgumentException();
            }
            return v.isNull() ? DataArguments.Thinking.NULL : v.asBoolean() ? DataArguments.Thinking.TRUE
                    : DataArguments.Thinking.FALSE;
        }
        if (c.getType() == List.class) { // LLaMA-Factory writes lists as "a,b" strings
            if (v.isTextual()) {
                return Arrays.stream(v.asText().split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
            }
            if (!v.isArray()) {
                throw new IllegalArgumentException();
            }
            List<String> out = new ArrayList<>();
            v.forEach(e -> out.add(e.asText()));
            return out;
        }
        if (c.getType() == Integer.class && !v.canConvertToInt()) {
            throw new IllegalArgumentException();
        }
        if (c.getType() == Integer.class && !v.isIntegralNumber()) {
            throw new IllegalArgumentException();
        }
        if (c.getType() == Boolean.class && !v.isBoolean()) {
            throw new IllegalArgumentException();
        }
        if (c.getType() == Double.class) { // YAML 1.1 reads 5e-5 (no dot) as a string; HF parses it anyway
            double d = v.isNumber() ? v.asDouble() : Double.parseDouble(v.asText());   // NumberFormatException is an IAE
            if (!Double.isFinite(d)) {   // .inf, Infinity, NaN: no hyperparameter of a run means that
                throw new IllegalArgumentException();
            }
            return d;
        }
        if (c.getType() == java.util.Map.class) { // an object, or a JSON string as LLaMA-Factory accepts
            JsonNode obj = v;
            if (v.isTextual()) {
                try {
                    obj = YAML.readTree(v.asText());
                } catch (IOException e) {
                    throw new IllegalArgumentException(e);
                }
            }
            if (obj == null || !obj.isObject()) {
                throw new IllegalArgumentException();
            }
            return YAML.convertValue(obj, java.util.Map.class);
        }
        if (c.getType() == String.class && !v.isValueNode()) {
            throw new IllegalArgumentException();
        }
        return YAML.convertValue(v, c.getType());
    }

    private static String describe(RecordComponent c) {
        if (c.getType() == List.class && c.getGenericType() instanceof ParameterizedType) {
            return "a list or a comma-separated string";
        }
        if (c.getType() == DataArguments.Thinking.class) {
            return "true, false or null";
        }
        return switch (c.getType().getSimpleName()) {
            case "Integer" -> "an integer";
            case "Boolean" -> "true or false";
            case "Double" -> "a finite number";
            case "Map" -> "a mapping of key: value";
            default -> "a string";
        };
    }
}
