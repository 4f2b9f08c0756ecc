"""``python -m blocks register [--only GROUP ...] [--from-stack NAME]``: create or update every block.

Settings come from the environment; with ``--from-stack`` the aws group's come from the outputs of
InsightFlow's CloudFormation stack (blocks/stack.py), credentials defaulting to the task role.
"""

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
    reg.add_argument(
        "--from-stack", metavar="NAME", help="read the aws group's settings from this CloudFormation stack"
    )
    args = parser.parse_args(argv)

    env: dict[str, str] = dict(os.environ)
    if args.from_stack:
        from blocks.stack import StackOutputsError, env_from_stack

        try:
            env = env_from_stack(args.from_stack, env)
        except StackOutputsError as exc:
            print(exc, file=sys.stderr)
            return 2
    lines, handled = register(PLANNERS, env, set(args.only or []))
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
