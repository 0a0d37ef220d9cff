"""Model registry, store (fetch / verify) and checkpoint loading."""

from vsrife.models.loading import LoadedModel, ModelLoadError, infer_model, layout, load_model, read_state_dict
from vsrife.models.registry import DEFAULT_MODEL, MODELS, ModelInfo, get_model, list_models
from vsrife.models.store import FetchError, fetch, locate, model_dir, verify

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "FetchError",
    "LoadedModel",
    "ModelInfo",
    "ModelLoadError",
    "fetch",
    "get_model",
    "infer_model",
    "layout",
    "list_models",
    "load_model",
    "locate",
    "model_dir",
    "read_state_dict",
    "verify",
]
