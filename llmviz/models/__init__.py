"""Everything that touches model files: the catalog, packaged GGUF files, the safetensors cache,
the Hub, bitsandbytes configurations and devices. Core modules receive loaded objects from here
and never load anything themselves."""

from llmviz.models.catalog import CATALOG, PAIRS, ModelSpec, get_spec, offered_keys
from llmviz.models.loading import (
    PRECISIONS,
    LoadedModel,
    clear_memory_cache,
    load_model,
    load_tokenizer,
)

__all__ = [
    "CATALOG",
    "PAIRS",
    "PRECISIONS",
    "LoadedModel",
    "ModelSpec",
    "clear_memory_cache",
    "get_spec",
    "load_model",
    "load_tokenizer",
    "offered_keys",
]
