"""llmviz: interactive lessons on how large language models work.

The package is layered (see docs/ARCHITECTURE.md):

* core modules (``tokens``, ``bpe``, ``attention``, ``sampling``, ``memory``, ``quantize``,
  ``compare``, ...) take a model or tokenizer as an argument and return arrays or frozen
  dataclasses; they never import gradio or plotly and never load a model;
* ``llmviz.models`` is the only place that touches disk caches, packaged weights, the Hub,
  bitsandbytes and devices;
* ``llmviz.plots`` is the only plotly importer;
* ``llmviz.ui`` wires gradio components to the core, one module per tab.
"""

__version__ = "0.1.0"
