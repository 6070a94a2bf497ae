"""DVC stage `range_spread`: the range test's seeds combined (each rule's median and min-max; lr_from reads it)."""

import sys

from superconv.report.range_spread import main

if __name__ == "__main__":
    sys.exit(main())
