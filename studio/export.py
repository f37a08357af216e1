"""Exporting a run: the adapter merged into its base model as a standalone folder, and pushing it."""

from __future__ import annotations

from pathlib import Path

from studio.errors import StudioError


class ExportError(StudioError):
    """The export cannot be done; the message says why."""


def merge(run_dir: Path, out: Path | None) -> tuple[Path, str]:
    """Merge the run's adapter into its base weights (peft merge_and_unload) and save model + tokenizer.

    The merge runs on the CPU with the base unquantized, in the dtype the run trained in (bf16/fp16 stay
    half precision rather than doubling in fp32); a 4-/8-bit run is merged into its dequantized base.
    Returns the folder and a line saying what was merged into what."""
    from studio.runs import load_adapted_model, trained_dtype

    out = Path(out) if out else Path(run_dir) / "merged"
    dtype, quantization = trained_dtype(run_dir)
    model, tokenizer = load_adapted_model(run_dir, device="cpu", dtype=dtype, quantization="none")
    merged = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    note = f"merged into {dtype} base weights"
    if quantization != "none":
        note += f" (the run trained a {quantization} QLoRA adapter; its base was loaded dequantized for the merge)"
    return out, note


def push_to_hub(folder: Path, repo: str) -> str:
    """Upload a merged folder; offline or unauthenticated is said plainly, not as a traceback."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi()
    try:
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo)
    except OfflineModeIsEnabled:
        raise ExportError("the hub is switched off here (HF_HUB_OFFLINE=1); the merged model is on disk") from None
    except HfHubHTTPError as exc:
        raise ExportError(f"the hub refused the upload ({exc}); log in with `hf auth login` or set HF_TOKEN") from None
    except Exception as exc:  # no route, DNS failure, refused connection: the HTTP client's own error types
        raise ExportError(f"no network to reach the hub ({type(exc).__name__}: {exc}); the merged model is on "
                          f"disk at {folder}") from None
    return f"https://huggingface.co/{repo}"
