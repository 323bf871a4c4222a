package dev.sparksft.model;

/**
 * How a model's decoder-layer linear weights are held when a run asks for quantization_bit: 4
 * (bnb's BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type, bnb_4bit_use_double_quant)).
 * bnb converts every nn.Linear but lm_head; embeddings and norms are no linears, and biases keep
 * their dtype, so here the q/k/v/o and gate/up/down weights of each layer are quantized.
 */
public record FourBitQuantization(FourBitType type, boolean doubleQuant) {
    /** Whether the parameter {@code name} is held in 4 bits. */
    public boolean quantizes(String name) {
        return ModelLayout.layerLinearModule(name) != null;
    }
}
