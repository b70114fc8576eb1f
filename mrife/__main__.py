"""``python -m mrife``: the same as the ``mrife`` command."""

import sys

from mrife.cli import main

sys.exit(main())
