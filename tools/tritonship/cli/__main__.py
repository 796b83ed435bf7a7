"""``python -m tritonship.cli``: the same as the ``tritonship`` console script."""

import sys

from tritonship.cli import main

sys.exit(main())
