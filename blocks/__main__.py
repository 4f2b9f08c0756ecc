"""``python -m blocks register [--only GROUP ...]``: create or update every block from the environment."""

from __future__ import annotations

import argparse
import os
import sys

from blocks import PLANNERS
from blocks.registry import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blocks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="create or update the blocks whose settings are present")
    reg.add_argument("--only", nargs="*", choices=sorted(PLANNERS), help="register only these groups")
    args = parser.parse_args(argv)

    lines, handled = register(PLANNERS, os.environ, set(args.only or []))
    for line in lines:
        print(line)
    if handled == 0:
        print(
            "No block was registered: no group had all of its settings. Export the variables listed above "
            "(see README, 'Configuration') and run again.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
