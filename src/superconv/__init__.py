"""superconv: a reproducibility pipeline for Leslie N. Smith's learning-rate work."""

import os

# Offline by default: no usage telemetry from MLflow or DVC, whatever entry point imports us first.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_AGENT_HINT", "1")

__version__ = "0.1.0"
