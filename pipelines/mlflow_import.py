"""A study's committed run directories and report into an MLflow experiment named after it (docs/mlflow.md).

    python pipelines/mlflow_import.py studies/<name>/study.yaml [--tracking-uri URI]   # then: make mlflow-ui

Torch-free (report.mlflow_import); re-running it logs nothing twice.
"""

import sys

from superconv.report.mlflow_import import main

if __name__ == "__main__":
    sys.exit(main())
