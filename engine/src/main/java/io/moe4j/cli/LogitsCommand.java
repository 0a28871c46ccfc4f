package io.moe4j.cli;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.KvType;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "logits", mixinStandardHelpOptions = true,
        description = "Write the logits of a token sequence as float32 little-endian [n_tokens][n_vocab], the golden data's format.")
final class LogitsCommand implements Callable<Integer> {
    @Mixin
    ModelOption modelOption;
    @Mixin
    DeviceOption device;
    @Option(names = "--tokens", required = true, split = ",", paramLabel = "IDS", description = "The token ids, separated by commas.")
    int[] tokens;
    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The file to write the logits to.")
    Path out;
    @Option(names = "--incremental", description = "Feed one token at a time through the KV cache instead of the whole sequence as one batch.")
    boolean incremental;
    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "f32", converter = KvTypeConverter.class,
            description = "The element type of the KV cache, f32, f16 or q8_0 (default: ${DEFAULT-VALUE}).")
    KvType kvType;
    @Mixin
    RopeOption rope;
    @Mixin
    ThreadsOption threads;
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        threads.apply();
        Path model = modelOption.resolve(spec.commandLine().getErr());
        try (GgufFile f = GgufFile.open(model)) {
            Transformer tf = Transformer.of(f, device.backend(), io.moe4j.model.LoadProgress.NONE, rope.overrides());
            int vocab = tf.vocabSize();
            for (int id : tokens) {
                if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
            KvCache cache = new KvCache(tf.config(), tokens.length, kvType);
            float[] logits;
            if (incremental) {
                logits = new float[tokens.length * vocab];
                for (int t = 0; t < tokens.length; t++) {
                    System.arraycopy(tf.forward(new int[]{tokens[t]}, 1, cache, false, null), 0, logits, t * vocab, vocab);
                }
            } else {
                logits = tf.forward(tokens, tokens.length, cache, true, null);
            }
            ByteBuffer buf = ByteBuffer.allocate(logits.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(logits);
            try {
                Files.write(out, buf.array());
            } catch (IOException e) {
                throw new Moe4jException("cannot write " + out + ": " + e.getMessage(), e);
            }
            spec.commandLine().getErr().printf("wrote %d x %d logits to %s%n", tokens.length, vocab, out);
        }
        return 0;
    }
}
