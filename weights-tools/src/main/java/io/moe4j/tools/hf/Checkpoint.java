package io.moe4j.tools.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.Moe4jException;
import io.moe4j.gguf.ModelFormatException;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The weights of a Hugging Face checkpoint folder: {@code model.safetensors}, or the shards named by
 * {@code model.safetensors.index.json}, or (without an index) every {@code model*.safetensors} file. A sharded
 * checkpoint with a missing shard, or an index naming tensors its shards lack, is refused with a message that lists
 * what is missing.
 */
public final class Checkpoint implements AutoCloseable {
    private final Path dir;
    private final List<SafetensorsFile> files = new ArrayList<>();
    private final Map<String, SafetensorsFile.Entry> tensors = new LinkedHashMap<>();

    private Checkpoint(Path dir) {
        this.dir = dir;
    }

    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) throw new Moe4jException("checkpoint folder not found: " + dir);
        Checkpoint c = new Checkpoint(dir);
        try {
            Path index = dir.resolve("model.safetensors.index.json");
            if (Files.isRegularFile(index)) {
                c.openIndexed(index);
            } else {
                List<Path> shards = new ArrayList<>();
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "model*.safetensors")) {
                    for (Path p : ds) shards.add(p);
                }
                shards.sort(null);
                if (shards.isEmpty()) {
                    throw new Moe4jException(dir + ": no model.safetensors, model.safetensors.index.json or model*.safetensors found"
                            + " (PyTorch .bin checkpoints are not supported: convert them to safetensors first)");
                }
                for (Path p : shards) c.add(SafetensorsFile.open(p));
            }
            return c;
        } catch (IOException e) {
            c.close();
            throw new Moe4jException("cannot read " + dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    private void openIndexed(Path index) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(index.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(index + ": malformed JSON: " + e.getMessage());
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw new ModelFormatException(index + ": no weight_map object");
        Map<String, String> byTensor = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            var e = it.next();
            byTensor.put(e.getKey(), e.getValue().asText());
        }
        Set<String> shardNames = new TreeSet<>(byTensor.values());
        List<String> missing = new ArrayList<>();
        for (String s : shardNames) {
            if (s.contains("/") || s.contains("\\") || s.startsWith("..")) throw new ModelFormatException(index + ": shard name '" + s + "' is not a file name");
            if (!Files.isRegularFile(dir.resolve(s))) missing.add(s);
        }
        if (!missing.isEmpty()) {
            throw new ModelFormatException(dir + ": sharded checkpoint is incomplete: " + missing.size() + " of " + shardNames.size()
                    + " shards named by model.safetensors.index.json are missing: " + String.join(", ", missing));
        }
        for (String s : shardNames) add(SafetensorsFile.open(dir.resolve(s)));
        Map<String, String> absent = new TreeMap<>();
        for (Map.Entry<String, String> e : byTensor.entrySet()) {
            SafetensorsFile.Entry t = tensors.get(e.getKey());
            if (t == null || !dir.resolve(e.getValue()).equals(fileOf(t))) absent.put(e.getKey(), e.getValue());
        }
        if (!absent.isEmpty()) {
            var first = absent.entrySet().iterator().next();
            throw new ModelFormatException(dir + ": " + absent.size() + " tensors of the index are not in their shard, e.g. '"
                    + first.getKey() + "' in " + first.getValue());
        }
    }

    private Path fileOf(SafetensorsFile.Entry t) {
        for (SafetensorsFile f : files) if (f.tensors().get(t.name()) == t) return f.path();
        return null;
    }

    private void add(SafetensorsFile f) {
        files.add(f);
        for (SafetensorsFile.Entry e : f.tensors().values()) {
            if (tensors.put(e.name(), e) != null) {
                throw new ModelFormatException(dir + ": tensor '" + e.name() + "' appears in more than one shard");
            }
        }
    }

    public Path dir() {
        return dir;
    }

    public Map<String, SafetensorsFile.Entry> tensors() {
        return tensors;
    }

    public SafetensorsFile.Entry get(String name) {
        return tensors.get(name);
    }

    public SafetensorsFile.Entry require(String name) {
        SafetensorsFile.Entry e = tensors.get(name);
        if (e == null) throw new ModelFormatException(dir + ": tensor '" + name + "' is missing from the checkpoint");
        return e;
    }

    @Override
    public void close() {
        for (SafetensorsFile f : files) f.close();
    }
}
