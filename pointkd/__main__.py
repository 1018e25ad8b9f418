"""``python -m pointkd``: the same as the ``pointkd`` command."""

from pointkd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
