"""``python -m vsrife.cli``: the same as the ``vsrife`` console script."""

from vsrife.cli.main import main

raise SystemExit(main())
