"""dvc.lock current at HEAD: --check (CI) and --accept (a code change no recorded run loaded); stages.lock."""

import sys

from superconv.stages.lock import main

if __name__ == "__main__":
    sys.exit(main())
