"""The Hub paths, with the network failure turned into a message that says how to run offline."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import MODEL_OFFLINE_HINT, OFFLINE_HINT, BenchError, HubUnreachableError

# Phrases transformers, datasets and huggingface_hub use when the network (not the repository) is the problem.
_NETWORK_SIGNS = (
    "couldn't connect",
    "could not connect",
    "couldn't reach",
    "connection",
    "offline mode",
    "hf_hub_offline",
    "name or service not known",
    "temporary failure in name resolution",
    "timed out",
    "localentrynotfound",
    "cannot find the requested files in the local cache",
    "network is unreachable",
)


def is_network_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, ConnectionError) or any(sign in text for sign in _NETWORK_SIGNS)


def call(what: str, fn: Callable[..., Any], *args: Any, _hint: str | None = None, **kwargs: Any) -> Any:
    """Run a Hub download; a network failure becomes HubUnreachableError (with `_hint`, how to do without this
    download, else the models' and GLUE's), any other OSError a BenchError."""
    try:
        return fn(*args, **kwargs)
    except BenchError:
        raise
    except Exception as exc:  # the Hub libraries raise OSError, ConnectionError, ValueError and their own types
        if is_network_error(exc):
            hint = f"{MODEL_OFFLINE_HINT}; {_hint}." if _hint else OFFLINE_HINT
            raise HubUnreachableError(f"could not reach the Hugging Face Hub for {what}. {hint}") from None
        if isinstance(exc, (OSError, ValueError, FileNotFoundError)) or unreadable_weights(exc):
            first = str(exc).splitlines()[0] if str(exc) else repr(exc)
            raise BenchError(f"could not load {what}: {type(exc).__name__}: {first}") from None
        raise


def unreadable_weights(exc: BaseException) -> bool:
    """A weights file that is not one (truncated, another format): safetensors' own error type, or torch's
    unpickling error for a .bin."""
    import pickle

    return type(exc).__module__.startswith("safetensors") or isinstance(exc, pickle.UnpicklingError)


def load(dataset_id: str, config: str | None, hint: str | None = None) -> Any:
    """A Hub dataset; `hint`: how to read it without the Hub (the GLUE one by default)."""
    import datasets

    return call(f"the dataset {dataset_id} ({config})", datasets.load_dataset, dataset_id, config, _hint=hint)
