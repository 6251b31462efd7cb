"""The first import of transformers and peft, made once and thread-safe.

transformers is a lazy module: ``from transformers import X`` imports X's submodule on first use.
Two gradio worker threads doing that at the same moment can see a half-initialised module
("cannot import name 'AutoTokenizer' from 'transformers'", seen in the browser tests when the
fine-tuning tab's first view and another tab's first tokenizer ran together). ``ready()``
resolves every name llmviz imports, once, under ``LOCK``; afterwards each import is a plain
attribute read. Call it before importing from transformers or peft.
``tests/test_library.py`` checks that every name the source imports is in ``NAMES``.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

#: Held while a library is first imported and while a model or a tokenizer is read from disk
#: (models.loading): loads are rare (each result is kept), so serialising them costs nothing.
LOCK = threading.RLock()

#: module -> the names llmviz imports from it (submodules are imported as modules)
NAMES: dict[str, tuple[str, ...]] = {
    "transformers": (
        "AutoConfig",
        "AutoModelForCausalLM",
        "AutoTokenizer",
        "BitsAndBytesConfig",
        "DynamicCache",
        "GenerationConfig",
        "LogitsProcessor",
        "LogitsProcessorList",
        "StoppingCriteria",
        "StoppingCriteriaList",
        "TemperatureLogitsWarper",
        "TextIteratorStreamer",
        "TopPLogitsWarper",
    ),
    "transformers.pytorch_utils": ("Conv1D",),
    "transformers.quantizers.base": ("get_keys_to_not_convert",),
    "transformers.quantizers.quantizers_utils": ("should_convert_module",),
    "peft": (
        "LoraConfig",
        "PeftModel",
        "get_peft_model",
        "get_peft_model_state_dict",
        "prepare_model_for_kbit_training",
        "set_peft_model_state_dict",
    ),
}
_DEPENDS = {"peft": "transformers"}
_done: set[str] = set()


def ready(library: str = "transformers") -> None:
    """Import ``library`` ("transformers" or "peft") and resolve the names llmviz uses from it.

    Raises ``ImportError`` as the import would (callers explain it to the user)."""
    if library in _done:
        return
    with LOCK:
        if library in _done:
            return
        if library in _DEPENDS:
            ready(_DEPENDS[library])
        for module, names in NAMES.items():
            if module == library or module.startswith(library + "."):
                mod = importlib.import_module(module)
                for name in names:
                    getattr(mod, name)
        _done.add(library)


class LazyModule:
    """A module imported at its first attribute access, not when the importing module loads.

    torch takes ~1.5 s to import; the core modules the tabs import while the page is built
    (sampling, generation, perplexity, ...) use it only inside functions, so
    ``from llmviz.library import torch`` keeps it off the path to the first page.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            with LOCK:  # one thread imports it; the others wait for the finished module
                module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


torch: Any = LazyModule("torch")
