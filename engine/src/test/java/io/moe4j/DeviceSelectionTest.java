package io.moe4j;

import io.moe4j.cli.Main;
import io.moe4j.generate.GenerateOptions;
import io.moe4j.model.DefaultModel;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code Model.load(path, options)} and {@code --device}: the CPU runs, anything else is a clear error before loading. */
class DeviceSelectionTest {
    private static final Path MODEL = DefaultModel.ensure();

    @Test
    void theCpuDeviceGivesTheSameTokensAsTheDefaultLoad() {
        GenerateOptions greedy = GenerateOptions.defaults().withSampling(io.moe4j.generate.SamplingOptions.GREEDY).withMaxTokens(8);
        String plain, cpu;
        try (Model m = Model.load(MODEL)) {
            assertEquals("cpu", m.backend().name());
            plain = m.generate("Once upon a time", greedy).text();
        }
        try (Model m = Model.load(MODEL, Model.LoadOptions.defaults().withDevice("CPU"))) {
            assertEquals("cpu", m.backend().name());
            cpu = m.generate("Once upon a time", greedy).text();
        }
        assertEquals(plain, cpu);
    }

    @Test
    void anUnknownDeviceIsNamedWithTheChoices() {
        var e = assertThrows(Moe4jException.class, () -> Model.load(MODEL, Model.LoadOptions.defaults().withDevice("tpu")));
        assertEquals("unknown device 'tpu': expected one of cpu, cuda", e.getMessage());
    }

    @Test
    void cudaInABuildWithoutItSaysSo() {
        var e = assertThrows(Moe4jException.class, () -> Model.load(MODEL, Model.LoadOptions.defaults().withDevice("cuda")));
        assertTrue(e.getMessage().contains("no CUDA backend"), e.getMessage());
    }

    @Test
    void theCliRefusesAnUnknownDeviceInOneLine() {
        Main.Captured r = Main.capture("run", "-m", MODEL.toString(), "-p", "Hi", "-n", "2", "--device", "tpu");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("unknown device 'tpu': expected one of cpu, cuda"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void theCliRunsOnTheCpuDevice() {
        Main.Captured r = Main.capture("run", "-m", MODEL.toString(), "-p", "Hi", "-n", "2", "--device", "cpu", "--temp", "0");
        assertEquals(0, r.exit(), r.err());
    }
}
