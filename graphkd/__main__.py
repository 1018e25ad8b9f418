"""``python -m graphkd``: the same as the ``graphkd`` command."""

from graphkd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
