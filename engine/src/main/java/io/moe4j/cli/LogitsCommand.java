package io.moe4j.cli;

import io.moe4j.Moe4jException;
import io.moe4j.gguf.GgufFile;
import io.moe4j.kernels.ops.KvBuffer;
import io.moe4j.model.KvCache;
import io.moe4j.model.Transformer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "logits", description = "Write float32 little-endian logits [n_tokens][n_vocab] for a token sequence (verification tool).")
final class LogitsCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL")
    Path model;
    @Option(names = "--tokens", required = true, split = ",", paramLabel = "IDS", description = "comma-separated token ids")
    int[] tokens;
    @Option(names = "--out", required = true, paramLabel = "FILE")
    Path out;
    @Option(names = "--incremental", description = "feed one token at a time through the KV cache (default: one batch)")
    boolean incremental;
    @Option(names = "--kv-type", defaultValue = "f32", converter = KvTypeConverter.class, description = "f32|f16 (default: ${DEFAULT-VALUE})")
    KvBuffer.Type kvType;
    @Mixin
    ThreadsOption threads;

    @Override
    public Integer call() throws IOException {
        threads.apply();
        try (GgufFile f = GgufFile.open(model)) {
            Transformer tf = Transformer.of(f);
            int vocab = tf.vocabSize();
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
            System.err.printf("wrote %d x %d logits to %s%n", tokens.length, vocab, out);
        }
        return 0;
    }
}
