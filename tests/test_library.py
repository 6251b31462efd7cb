"""llmviz.library: transformers and peft imported once, thread-safe, with every name llmviz uses."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from llmviz import library

ROOT = Path(__file__).resolve().parents[1]


def _imports_from(module_prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    """module -> names imported with ``from module import ...`` anywhere in llmviz/ or app.py."""
    found: dict[str, set[str]] = {}
    for path in [*ROOT.joinpath("llmviz").rglob("*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in module_prefixes:
                    found.setdefault(node.module, set()).update(a.name for a in node.names)
    return found


def test_every_name_the_source_imports_is_resolved_by_ready():
    used = _imports_from(("transformers", "peft"))
    assert "transformers" in used and "peft" in used  # the scan sees the real imports
    for module, names in used.items():
        assert module in library.NAMES, module
        assert names <= set(library.NAMES[module]), (module, names - set(library.NAMES[module]))


def test_ready_resolves_every_listed_name():
    library.ready("peft")  # transformers first, then peft
    import importlib

    for module, names in library.NAMES.items():
        mod = importlib.import_module(module)
        for name in names:
            assert getattr(mod, name) is not None, (module, name)
    assert {"transformers", "peft"} <= library._done


def test_first_use_from_many_threads_at_once_in_a_fresh_process():
    """Sixteen threads make their first transformers imports together: none may fail."""
    code = """
import threading
from llmviz import library
errors = []
names = ["AutoTokenizer", "AutoConfig", "AutoModelForCausalLM", "GenerationConfig",
         "TextIteratorStreamer", "StoppingCriteria", "LogitsProcessor", "BitsAndBytesConfig"]
start = threading.Barrier(16)
def work(i):
    start.wait()
    try:
        library.ready()
        import transformers
        getattr(transformers, names[i % len(names)])
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print("ERRORS", errors)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True)  # fmt: skip
    assert "ERRORS []" in out.stdout, out.stdout + out.stderr


def test_building_the_page_does_not_import_torch():
    """torch (~1.5 s) is imported after the page is served, at the first model use (where a GPU
    driver is present, asking torch whether CUDA works is worth its import)."""
    code = ("import sys; from llmviz.models import device; gpu = not device._no_gpu_here(); "
            "import app; print('TORCH', 'torch' in sys.modules and not gpu)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=180, check=True, env={**__import__("os").environ,
                         "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})  # fmt: skip
    assert "TORCH False" in out.stdout, out.stdout + out.stderr[-2000:]


def test_a_lazy_module_imports_on_first_use():
    lazy = library.LazyModule("json")
    assert "not imported" in repr(lazy)
    assert lazy.dumps([1]) == "[1]"
    assert "imported" in repr(lazy) and "not" not in repr(lazy)
