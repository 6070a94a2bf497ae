"""DVC stage `paper` (studies/dvc.yaml): reports/paper.md and paper.html from every study's report."""

import sys

from superconv.report.paper import main

if __name__ == "__main__":
    sys.exit(main())
