"""all-MiniLM-L6-v2 on ONNX Runtime: the same vectors as sentence-transformers in about half the CPU time.

A wheel cannot run code at install time, so the ONNX graph is exported from the *bundled* weights (never downloaded)
the first time a process needs it, and kept in a cache folder for every later process: ``PRIVEX_EMBEDDING_CACHE``,
or ``$XDG_CACHE_HOME/privex`` (``~/.cache/privex``). The file's name carries a hash of the model files, of the export
code and of the torch / transformers / onnxruntime versions, so an upgrade of any of them exports again instead of
running a stale graph. Processes starting together (gunicorn and Celery workers) take turns on a lock file, so one
exports while the others wait for its file, and the graph is written to a temporary file and renamed, so no process
ever reads half a file. Exporting takes about 2 s and needs PyTorch; running it does not
import PyTorch at all.

The graph holds the transformer *and* sentence-transformers' mean pooling and L2 normalisation, written as the
same operations (``Pooling`` sums the masked token vectors and divides by the mask's sum clamped at 1e-9;
``Normalize`` divides by the norm clamped at 1e-12). Text is cut into word pieces by the model's own
``tokenizer.json`` with the Rust ``tokenizers`` library that sentence-transformers' fast tokenizer wraps, truncated at
``max_seq_length`` (256) like sentence-transformers does. Measured: at most 2e-7 apart from PyTorch's vectors.

An ``InferenceSession`` may be run from several threads at once. Its thread pool, like PyTorch's, does not survive
``fork``: ``local.py`` drops the session in a forked child, which loads its own from the cache file (0.2 s).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXPORT_VERSION = "1"  # bump when the exported graph changes (wrapper, opset, names)
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"
_HASHED_FILES = ("model.safetensors", "config.json", "modules.json", "1_Pooling/config.json")


def cache_folder() -> Path:
    """Where exported graphs are kept: ``PRIVEX_EMBEDDING_CACHE``, else the user's cache folder."""
    configured = os.environ.get("PRIVEX_EMBEDDING_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "privex"


def graph_path(model_dir: Path) -> Path:
    """The cache file of this model's graph, named by what it was exported from and with."""
    digest = hashlib.sha256(f"export {EXPORT_VERSION} opset {OPSET}".encode())
    for name in _HASHED_FILES:
        with open(model_dir / name, "rb") as file:
            digest.update(name.encode() + hashlib.file_digest(file, "sha256").digest())
    for package in ("torch", "transformers", "onnxruntime"):
        digest.update(f"{package}=={_version(package)}".encode())
    return cache_folder() / f"all-MiniLM-L6-v2-{digest.hexdigest()[:16]}.onnx"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def check_pipeline(model_dir: Path) -> None:
    """Refuse (ValueError) a bundled model whose pipeline is not transformer → mean pooling → normalize, the one
    the exported graph reproduces."""
    modules = [module["type"].rsplit(".", 1)[-1] for module in _json(model_dir / "modules.json")]
    pooling = _json(model_dir / "1_Pooling" / "config.json")
    modes = sorted(key for key, value in pooling.items() if key.startswith("pooling_mode") and value)
    if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"the bundled model's pipeline is {modules} with {modes}, not mean pooling + normalize")


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def export(model_dir: Path, target: Path) -> Path:
    """Export the bundled weights to ``target`` (atomically) as one graph from word pieces to unit vectors."""
    import torch
    from transformers import AutoModel

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    check_pipeline(model_dir)
    model = SentenceEmbedding(AutoModel.from_pretrained(str(model_dir)).eval())
    sample = torch.ones(2, 8, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        # The tracer warns about Python branches on shapes inside transformers' attention; both branches give the
        # same values here (checked by the tests against PyTorch for short, long and truncated texts).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (sample, sample, torch.zeros_like(sample)), temporary, input_names=list(INPUTS),
                output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
                dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in INPUTS}, OUTPUT: {0: "batch"}},
            )
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from another user sharing the cache
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def exported(model_dir: Path) -> Path:
    """The cached graph of the bundled model, exported first if no process did it before. Processes starting
    together take turns on a lock file, so one exports and the others then read its file."""
    path = graph_path(model_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not path.exists():
            log.info("exporting all-MiniLM-L6-v2 to ONNX", extra={"path": str(path)})
            export(model_dir, path)
    return path


class OnnxMiniLM:
    """The model's tokenizer and an ONNX Runtime session over its exported graph. ``encode`` is safe to call from
    several threads at once: the tokenizer is configured once and only read afterwards."""

    runtime = "onnx"

    def __init__(self, model_dir: Path, threads: int):
        import onnxruntime
        from tokenizers import Tokenizer

        check_pipeline(model_dir)
        path = exported(model_dir)
        self.max_length = _json(model_dir / "sentence_bert_config.json")["max_seq_length"]
        self.dimension = _json(model_dir / "config.json")["hidden_size"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: under load the cores belong to the other workers' requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors of ``texts`` in order, ``batch_size`` at a time, longest first as sentence-transformers
        does, so that a batch pads little."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chosen = order[start:start + batch_size]
            vectors[chosen] = self._run([texts[i] for i in chosen])
        return vectors

    def _run(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers strips each text before tokenizing it.
        encodings = self.tokenizer.encode_batch([text.strip() for text in texts])
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self.session.run([OUTPUT], feed)[0]
