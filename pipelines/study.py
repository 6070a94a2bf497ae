"""DVC stage `runs@<study>` (studies/dvc.yaml): every run x seed of its study.yaml not yet up to date."""

import sys

from superconv.stages.study import main

if __name__ == "__main__":
    sys.exit(main())
