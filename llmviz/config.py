"""Constants, limits and the few settings read from the environment.

Environment variables are read here and nowhere else, so every limit a student can hit is
visible in one file (and stated in the UI next to the control it limits).
"""

from __future__ import annotations

import os
from pathlib import Path

# --- where things live ------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

#: Dequantized GGUF models are cached here as safetensors + tokenizer files.
CACHE_DIR = Path(os.environ.get("LLMVIZ_CACHE", Path.home() / ".cache" / "llmviz")).expanduser()

#: Comma-separated catalog keys of Hub models to offer in addition to the packaged ones
#: (e.g. "smollm2-135m,smollm2-135m-instruct"), or "all" for every Hub preset.
HUB_MODELS = os.environ.get("LLMVIZ_HUB_MODELS", "")

#: Set LLMVIZ_OFFLINE=1 to refuse every Hub access even when a network is present.
OFFLINE = os.environ.get("LLMVIZ_OFFLINE", "") not in ("", "0", "false", "False")

#: Catalog keys of the default models (both work with no network).
DEFAULT_BASE = os.environ.get("LLMVIZ_BASE_MODEL", "gemma-3-270m")
DEFAULT_INSTRUCT = os.environ.get("LLMVIZ_INSTRUCT_MODEL", "smollm2-135m-instruct")

#: Precision for model work in the tabs: "auto" = bf16 where the hardware computes it natively
#: (GPU, avx512_bf16 / AMX CPUs), fp32 elsewhere (emulated bf16 is ~4x slower than fp32).
#: Per-tab overrides: LLMVIZ_ATTENTION_PRECISION, LLMVIZ_SAMPLING_PRECISION, LLMVIZ_COMPARE_PRECISION.

#: Models kept in memory at once are limited by their footprint (bytes), least recently used first out.
MODEL_MEMORY_BUDGET = int(float(os.environ.get("LLMVIZ_MODEL_BUDGET_GB", "6")) * 2**30)

#: How many model requests (views, generations, loads) gradio runs at once; light endpoints
#: (tokenizer, calculators) have their own lanes and never wait for these. Their forward passes
#: take turns on ONE compute lane (``llmviz.lane.COMPUTE``, first come first served), so more
#: lanes do not oversubscribe the cores (which is what 2+2 parallel lanes did before: 10
#: generations unfinished after 150 s, BENCHMARKS.md): they let a short request in between two
#: tokens of a long generation, and let concurrent views run as one batch. Requests beyond
#: this wait in gradio's queue, which shows their position and an estimated wait.
MODEL_LANES = max(1, int(os.environ.get("LLMVIZ_MODEL_LANES", "8")))

#: Most prompts computed in one batched forward pass of next-token views (``llmviz.lane``).
BATCH_MAX = max(1, int(os.environ.get("LLMVIZ_BATCH_MAX", "16")))
#: A decoding step waits up to this long (seconds) for the other generations of its last batch
#: to ask for their next step, so that they run as one batched forward pass (``lane.Stepper``):
#: a few times the sampling time between two steps (~5 ms), a fraction of one step (~100 ms).
DECODE_GATHER_S = max(0.0, float(os.environ.get("LLMVIZ_DECODE_GATHER_MS", "25")) / 1000)
#: A request that has waited this long (seconds) for the compute lane is told its place in line
#: and an estimated wait (a progress message in the user's language), updated at most every
#: LANE_REPORT_EVERY_S while its place changes.
LANE_REPORT_AFTER_S = max(0.0, float(os.environ.get("LLMVIZ_LANE_REPORT_AFTER_MS", "1000")) / 1000)
LANE_REPORT_EVERY_S = 0.5
#: Next-token views kept per loaded model and shared by every session (the class's presets):
#: each is one float32 row of the vocabulary, 1 MB for Gemma 3 (262k), 0.2 MB for SmolLM2, so
#: 64 cost at most 64 MB per model on top of the model memory budget.
SHARED_VIEWS = max(0, int(os.environ.get("LLMVIZ_SHARED_VIEWS", "64")))
#: Other shared results kept per loaded model (perplexity scores, attention analyses: at most
#: 68 MB each for a 256-token attention run, usually a few MB), least recently used first out.
SHARED_RESULTS = max(0, int(os.environ.get("LLMVIZ_SHARED_RESULTS", "8")))

#: Light endpoints (tokenizer, calculators, re-drawing a chart) that may run at once.
LIGHT_LANES = max(1, int(os.environ.get("LLMVIZ_LIGHT_LANES", "8")))

# --- limits a student can hit (the UI states them) ---------------------------------------------
MAX_TEXT_CHARS = 20_000  # tokenizer playground input
MAX_PROMPT_TOKENS = 256  # attention / sampling / base-vs-instruct prompts
MAX_ATTENTION_TOKENS = 256
MAX_NEW_TOKENS = 200
MAX_CORPUS_CHARS = 2_000_000  # tokenizer training corpus
MAX_VOCAB_SIZE = 32_000
MIN_VOCAB_SIZE = 30

# --- inside the model tab ---
INSIDE_PRECISION = os.environ.get("LLMVIZ_INSIDE_PRECISION", "auto")
INSIDE_NEIGHBOURS = 15  # rows of the nearest-neighbour table
INSIDE_MAX_TOKENS = 64  # logit lens: one column per token (the grid stays readable)
INSIDE_MAX_WORD_CHARS = 40  # a word / target token
INSIDE_MAX_WORD_TOKENS = 8  # pieces averaged for one word
INSIDE_MIN_WORDS = 3  # a 2-D map of fewer says nothing
INSIDE_MAX_WORDS = 60
INSIDE_KV_MAX_NEW_TOKENS = 120  # the KV-cache meter's generation

# --- labs tab ---
PPL_MAX_CHARS = 20_000  # perplexity text, checked before tokenizing
PPL_MAX_TOKENS = 2_048  # tokens scored per text (the UI states it); longer text is refused
PPL_WINDOW = 512  # sliding-window context (tokens) per forward pass
PPL_STRIDE = 256  # new tokens scored per window after the first
SCALING_MAX_PARAMS = 1e14  # 100 trillion parameters: beyond any model trained so far
SCALING_MAX_TOKENS = 1e16  # 10 quadrillion training tokens
SCALING_MAX_FLOPS = 1e30
SCALING_MAX_GPUS = 1_000_000  # GPUs in one training run

# --- sampling tab ---
SAMPLING_DEFAULT_TOP_K = 50  # transformers' GenerationConfig default: generate() applies it silently
SAMPLING_MAX_TEMPERATURE = 5.0  # far past the point where text falls apart (~2)
SAMPLING_MIN_TEMPERATURE = 0.01  # positive temperatures below this overflow; 0 means greedy
SAMPLING_MAX_NEW_TOKENS = MAX_NEW_TOKENS  # per prompt: step by step and streaming together
SAMPLING_MAX_SEED = 2**31 - 1
SAMPLING_TOP_N = 20  # candidates in the bar chart by default
SAMPLING_MAX_TOP_N = 50
SAMPLING_CURVE_N = 200  # points of the cumulative (top-p) curve
SAMPLING_EXPERIMENT_TEMPERATURES = (0.0, 0.5, 1.0, 1.5, 2.0)  # the textbook's experiment
SAMPLING_EXPERIMENT_SAMPLES = 3
SAMPLING_EXPERIMENT_TOKENS = 20
SAMPLING_EXPERIMENT_MAX_TOKENS = 50
#: A streamed generation updates the page at most this often (seconds); the last token always.
STREAM_UPDATE_S = max(0.0, float(os.environ.get("LLMVIZ_STREAM_UPDATE_MS", "150")) / 1000)
# fp32 like the attention tab: on CPUs without avx512_bf16 bf16 matmuls are many times slower.
SAMPLING_PRECISION = os.environ.get("LLMVIZ_SAMPLING_PRECISION", "auto")

# --- memory tab ---
MEMORY_MAX_PARAMS = 1e13  # 10 trillion: above every model built so far; 1e15 is refused
MEMORY_MAX_CONTEXT = 10_000_000  # tokens (the longest advertised context windows are ~10M)
MEMORY_MAX_BATCH = 4096
MEMORY_CUDA_OVERHEAD_GB = 0.5  # CUDA context + kernels per GPU: an estimate (0.3-1 GB in practice)
MEMORY_TEXTBOOK_CARD_GB = 24  # the textbook's card (RTX 4090) for "how many cards?"
MEMORY_LAB_MAX_ELEMENTS = 4_000_000  # weights quantized per lab request (bigger matrices: sampled rows)
MEMORY_QUALITY_TEXT_TOKENS = 128  # fixed text for perplexity / agreement, truncated to this
MEMORY_SAMPLE_NEW_TOKENS = 24  # greedy sample per precision

# --- tokenizer tab ---
TOK_DISPLAY_MAX_TOKENS = 600  # colored spans drawn per tokenizer (counts always cover all text)
TOK_MAX_SELECTED = 8  # tokenizers compared side by side
TOK_JANOME_MAX_CHARS = 5_000  # janome (pure Python) is ~100x slower than the subword tokenizers
TOK_MAX_DECODE_IDS = 4_096  # ids accepted by the decode box
TOK_MAX_PARALLEL = 12  # sentences in the language-premium chart
TOK_MAX_SENTENCE_CHARS = 500
TOK_MAX_UPLOAD_BYTES = 4 * MAX_CORPUS_CHARS  # an uploaded .txt corpus (UTF-8: <= 4 bytes/char)
TOK_TRAIN_SIZES = (300, 500, 1_000, 2_000, 5_000, 10_000, 20_000)  # trained in the lab's sweep
TOK_MAX_TRAINED = 4  # trained tokenizers kept per browser session
TOK_STEP_MAX_CHARS = 3_000  # corpus for the step-by-step (hand-written) BPE
TOK_STEP_MAX_MERGES = 200
#: Longest "word" (a piece of a line with no space in it) in a training corpus. BPE's training time
#: grows with its square: 20,000 characters took 0.6 s here, one 1,000,000-character word kept a
#: core busy for 30+ minutes and grew the server to ~6 GB.
TOK_MAX_WORD_CHARS = 10_000
#: Seconds one training request (every size of the lab's sweep) may run; its child process is
#: killed then, or as soon as the student presses Stop or leaves.
TOK_TRAIN_SECONDS = 20

# --- attention tab ---
# "auto" = fp32 on CPUs without avx512_bf16 (this machine's EPYC has only AVX2: a bf16 forward costs
# ~4-5x the CPU time, benchmarks/bench_attention.py), bf16 where it is native. fp32 rows sum to 1
# within 1e-6, bf16 rows within ~1e-2.
ATTENTION_PRECISION = os.environ.get("LLMVIZ_ATTENTION_PRECISION", "auto")

# --- compare tab ---
COMPARE_MAX_PROMPT_CHARS = 500  # the question typed in the base-vs-instruct tab
COMPARE_MAX_EXAMPLES = 8  # few-shot example pairs
COMPARE_MAX_EXAMPLE_CHARS = 200  # one "input => output" line
COMPARE_DEFAULT_NEW_TOKENS = 40
COMPARE_TOP_K = 10  # candidates shown for the first answer token
#: A streamed generation updates the page at most this often (seconds); the last token always.
STREAM_UPDATE_S = max(0.0, float(os.environ.get("LLMVIZ_STREAM_UPDATE_MS", "150")) / 1000)
# fp32 like the attention tab: without avx512_bf16 (this machine) bf16 generation crawls at ~1-3
# tokens/s; fp32 is the fast path on plain AVX2 CPUs.
COMPARE_PRECISION = os.environ.get("LLMVIZ_COMPARE_PRECISION", "auto")
#: torch threads each of the two generation threads uses while both run (None: leave torch as is).
#: Measured here (benchmarks/bench_compare.py, 3 runs): 1 thread each costs ~30% less CPU per
#: token, but torch's default gave the shorter time to first token every time, and leaving it
#: alone changes nothing process-wide for the other tabs.
COMPARE_THREADS_PER_STREAM: int | None = None

# --- fine-tuning tab ---
FT_MAX_STEPS = 500  # one live run (a default run is FT_DEFAULT_STEPS)
FT_MAX_RANK = 256
FT_MAX_BATCH = 16
FT_MAX_TOKENS = 128  # tokens per training example (prompt + answer); longer ones are cut
FT_MAX_FIELD_CHARS = 1_000  # one instruction or answer in an uploaded set
FT_MAX_PAIRS = 5_000
FT_MAX_UPLOAD_BYTES = 2_000_000
FT_SECONDS = 600  # wall-clock budget of one live run; it stops (and says so) after this
#: Precision of the model a live run trains: "auto" = bf16 where native, fp32 elsewhere; on CUDA
#: the frozen base is loaded in 4-bit (QLoRA).
FT_PRECISION = os.environ.get("LLMVIZ_FT_PRECISION", "auto")
FT_DEFAULT_STEPS = 40  # a live run: ~1 min with its answers on 2 cores (benchmarks/bench_finetune.py)
FT_DEFAULT_PROBE_EVERY = 5  # steps between two answers to the held-out question
FT_PROBE_TOKENS = 32  # new tokens of each of those answers
FT_ASK_TOKENS = 48  # new tokens when a student asks their own tuned model

# --- labs: bias and in-context learning ---
PROBE_BATCH = 24  # rows per forward pass when scoring continuations (memory: rows x length)
BIAS_MAX_FILLERS = 16  # fillers per template set
BIAS_MAX_TEMPLATE_CHARS = 200
BIAS_MAX_TARGET_CHARS = 30
ICL_MAX_ITEMS = 60  # labelled reviews scored per condition
ICL_COT_NEW_TOKENS = 64  # tokens of each worked answer (chain of thought)
ICL_DIRECT_NEW_TOKENS = 8  # tokens of each direct answer
ICL_COT_BATCH = 6  # problems generated together (one batched generate)

# --- labs: GPU vs CPU
SPEED_DEFAULT_MAX_SIZE = 10**7  # the largest list a click times by default
SPEED_MIN_SIZE = 10
SPEED_MAX_SIZE = 10**8  # numpy/torch float32: 400 MB in + 400 MB out at this size
#: A method stops growing once one call took, or would take (extrapolated), longer than this.
SPEED_CALL_BUDGET_S = 0.5
#: A click starts no new measurement after this many seconds (the rest say "not run").
SPEED_RUN_BUDGET_S = 8.0
#: The Python loop's list stops here: 10^6 floats already take ~64 MB (list + float objects, in and
#: out), 10^8 would take ~6.4 GB.
SPEED_PYTHON_MAX_SIZE = 10**6
SPEED_MAX_BYTES = 1_000_000_000  # input + output of one method at one size
SPEED_MIN_TIME_S = 0.02  # autorange: calls per repeat grow until one repeat lasts this long
SPEED_REPEATS = 3  # repeats per size; the fastest counts (the least disturbed by other work)
SPEED_MAX_LOOPS = 100_000  # calls per repeat, at most
SPEED_MAX_BATCH_ELEMENTS = 10**8  # numbers squared per repeat, at most
SPEED_SEED = 0
HYAKUMASU_DEFAULT_WORKERS = 7  # the extra picture next to 1, 2, 10 and 100 workers

# --- labs: learning rate
#: The 2-D bowl L = ½ θᵀHθ: curvatures (eigenvalues of H) allowed, where every path starts, and
#: when a path counts as diverged: |θ| above LR_DIVERGE_FACTOR × |θ₀| (it leaves the drawing).
LR_CURVATURE_MIN, LR_CURVATURE_MAX = 0.1, 50.0
LR_START = (-4.0, 3.0)
LR_DIVERGE_FACTOR = 2.0
LR_GD_MAX_STEPS = 500
LR_PRESET_FACTORS = (0.1, 1.0, 2.1)  # the preset α's, in units of 1/λmax
#: The character-bigram training run (full-batch SGD, three α's side by side): at most this many
#: steps and seconds of compute per click (300 steps x 3 runs: 0.3-0.9 s on 2 idle cores, up to
#: the budget when other work keeps both cores busy; 1,000 steps: 1.4-2.3 s idle).
LR_TRAIN_MAX_STEPS = 1_000
LR_TRAIN_DEFAULT_STEPS = 300
LR_TRAIN_SECONDS = 10.0
LR_TRAIN_EVERY = 25  # steps of each run between two chart updates (one turn on the lane)
#: α too small / good / too large per corpus, measured (300 steps, zero init): en 4.09 -> 3.88,
#: 2.27 (bound 2.24), 24 (worse than ln V = 4.09); ja 5.90 -> 5.39, 1.75 (bound 1.72), 21. The
#: good ones decrease at every step (ja at 250+ ends in a small two-step oscillation).
LR_TRAIN_ALPHAS = {"en": (0.1, 50.0, 1000.0), "ja": (0.5, 200.0, 10000.0)}
LR_SAMPLE_CHARS = 80  # characters sampled from each trained model
LR_SAMPLE_SEED = 0
#: The warm-up + cosine schedule: the textbook's peak, the longest run drawn, points drawn.
LR_SCHEDULE_PEAK = 2.5e-4
LR_SCHEDULE_MAX_STEPS = 10_000_000
LR_SCHEDULE_POINTS = 1_000

# --- export: "save this view" (llmviz/plots/export.py, llmviz/ui/export_ui.py) --------------------
EXPORT_MAX_BYTES = 40_000_000  # one saved view at most (plotly.js inside it alone is ~4.8 MB)
EXPORT_MAX_INPUT_CHARS = 10_000  # characters kept of one input's label or value ("…" marks a cut)
