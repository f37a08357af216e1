"""Exporting a run: the adapter merged into its base model as a standalone folder, and pushing it."""

from __future__ import annotations

from pathlib import Path

from studio.errors import StudioError


class ExportError(StudioError):
    """The export cannot be done; the message says why."""


def merge(run_dir: Path, out: Path | None) -> Path:
    """Merge the run's adapter into its base weights (peft merge_and_unload) and save model + tokenizer."""
    from studio.runs import RunError, load_adapted_model

    out = Path(out) if out else Path(run_dir) / "merged"
    try:
        model, tokenizer = load_adapted_model(run_dir, device="cpu")
    except RunError as exc:
        raise ExportError(str(exc)) from None
    merged = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


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
