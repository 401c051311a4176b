"""``python -m d2lcv_book``: see :mod:`d2lcv_book.build`."""

from d2lcv_book.build import main

raise SystemExit(main())
