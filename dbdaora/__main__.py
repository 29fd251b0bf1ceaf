"""``python -m dbdaora``: the command line, when the ``cli`` extra is installed."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line, or say in one line how to install it."""
    try:
        from dbdaora.cli.app import main as run
    except ImportError as exc:
        if exc.name not in ("typer", "rich", "click"):
            raise
        print(
            "the dbdaora command line needs its extra: pip install 'dbdaora[cli]'", file=sys.stderr
        )
        raise SystemExit(1) from None
    run()


if __name__ == "__main__":
    main()
