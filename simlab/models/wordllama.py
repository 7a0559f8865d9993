"""The offline default model: WordLlama's pretrained static token embeddings.

The `wordllama` wheel ships a 32k x 256 embedding table and its tokenizer. `WordLlama.load()`
looks for them on the Hugging Face hub, so we read the two files from the installed package
with `importlib.resources` and wrap them in a sentence-transformers `StaticEmbedding`:
the result is an ordinary `SentenceTransformer` that trains, saves and reloads like any other.
"""

from __future__ import annotations

from importlib import resources

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
MODEL_ID = "wordllama/l2_supercat_256"


def build_wordllama(max_length: int = 256):
    """Return a `SentenceTransformer([StaticEmbedding])` with WordLlama's weights (dim 256)."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    root = resources.files("wordllama")
    with resources.as_file(root / TOKENIZER) as tok_path:
        tokenizer = Tokenizer.from_file(str(tok_path))
    with resources.as_file(root / WEIGHTS) as w_path:
        weights = load_file(str(w_path))["embedding.weight"].float()  # (32000, 256), stored fp16
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    static = StaticEmbedding(tokenizer, embedding_weights=weights)
    return SentenceTransformer(modules=[static], device="cpu")
