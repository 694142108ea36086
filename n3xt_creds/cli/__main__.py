"""``python -m n3xt_creds.cli``: the same program as the ``n3xt-creds`` script."""

import sys

from . import main

sys.exit(main())
