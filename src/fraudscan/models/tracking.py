"""MLflow tracking: every training run logged, models registered with the ``champion`` alias.

Default store (relative to the working directory, see mlflow/README.md)::

    mlflow/mlflow.db         SQLite backend  (sqlite:///mlflow/mlflow.db)
    mlflow/artifacts/        artifacts: models, feature lists, plots

``MLFLOW_TRACKING_URI`` (or ``FRAUDSCAN_MLFLOW_DIR`` for a directory holding both) overrides it.
Models are logged as scikit-learn models (the fitted :class:`HybridRiskModel`, whose
``booster_`` is the raw LightGBM Booster) with pip requirements given explicitly — inferring
them costs ~4 s per model — plus ``booster.txt`` so a service can load the Booster with LightGBM
alone. Registered names are ``fraudscan-<subject>``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fraudscan.models.base import HybridRiskModel

ALIAS = "champion"
EXPERIMENT = "fraudscan"


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "lightgbm", "numpy", "cloudpickle")]


def store_dir() -> Path:
    """Directory of the default store: ``$FRAUDSCAN_MLFLOW_DIR`` or ``./mlflow``."""
    return Path(os.environ.get("FRAUDSCAN_MLFLOW_DIR", "mlflow")).resolve()


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI in force: argument, ``MLFLOW_TRACKING_URI``, else the SQLite store."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{store_dir() / 'mlflow.db'}"


@contextmanager
def scoped(uri: str | None = None) -> Iterator[str]:
    """Point MLflow at the store for one operation, then put things back as they were.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, so
    without this one training run would redirect every later MLflow call of the process (and
    of its subprocesses, such as a service started afterwards) to its store.
    """
    import mlflow

    had_env = "MLFLOW_TRACKING_URI" in os.environ
    before = mlflow.get_tracking_uri() if had_env else None
    try:
        yield configure(uri)
    finally:
        mlflow.set_tracking_uri(before)
        if not had_env:
            os.environ.pop("MLFLOW_TRACKING_URI", None)


def configure(uri: str | None = None) -> str:
    """Point MLflow at the store (creating the default directories) and the experiment."""
    import mlflow

    u = tracking_uri(uri)
    if u.startswith("sqlite:///") and not uri and not os.environ.get("MLFLOW_TRACKING_URI"):
        (store_dir() / "artifacts").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(u)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        loc = None
        if u.startswith("sqlite:///"):
            loc = (Path(u[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=loc)
    mlflow.set_experiment(EXPERIMENT)
    return u


def model_name(subject: str) -> str:
    return f"fraudscan-{subject}"


def _flat(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}".replace("@", "_at_")
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{key}."))
        elif isinstance(v, int | float | np.floating | np.integer) and np.isfinite(v):
            out[key] = float(v)
    return out


def log_training(subject: str, model: HybridRiskModel, *, params: Mapping[str, Any],
                 metrics: Mapping[str, Any], features: list[str], fingerprint: str,
                 figures: Mapping[str, Any] | None = None, tables: Mapping[str, Any] | None = None,
                 register: bool = True, uri: str | None = None) -> dict[str, Any]:
    """Log one subject's run; register the model and point ``champion`` at it.

    Returns run id, model URI and registered version.
    """
    import mlflow
    import mlflow.sklearn

    with scoped(uri), mlflow.start_run(run_name=f"{subject}-model") as run:
        mlflow.set_tags({"subject": subject, "data_fingerprint": fingerprint})
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, list | dict) else v)
                           for k, v in params.items()})
        mlflow.log_param("data_fingerprint", fingerprint)
        mlflow.log_metrics(_flat(metrics))
        mlflow.log_dict({"features": features}, "features.json")
        for name, fig in (figures or {}).items():
            mlflow.log_figure(fig, f"plots/{name}.png")
        for name, df in (tables or {}).items():
            mlflow.log_text(df.to_csv(index=False), f"tables/{name}.csv")
        if model.booster_ is not None:
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / "booster.txt"
                model.booster_.save_model(str(p))
                mlflow.log_artifact(str(p))
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=_pip_requirements(),
            serialization_format="cloudpickle",
            registered_model_name=model_name(subject) if register else None)
        version = None
        if register:
            client = mlflow.MlflowClient()
            version = str(info.registered_model_version)
            client.set_registered_model_alias(model_name(subject), ALIAS, version)
        return {"run_id": run.info.run_id, "model_uri": info.model_uri, "version": version}


def load_champion(subject: str, uri: str | None = None) -> HybridRiskModel:
    """The ``champion`` model of a subject from the registry."""
    import mlflow
    import mlflow.sklearn

    with scoped(tracking_uri(uri)):
        return mlflow.sklearn.load_model(f"models:/{model_name(subject)}@{ALIAS}")


def load_champion_booster(subject: str, uri: str | None = None):  # -> lgb.Booster | None
    """The champion's raw LightGBM Booster (None for an outlier-only model)."""
    return load_champion(subject, uri).booster_
