"""Command line: ``python -m ncbook.course {student-edition,instructor-edition,otter} OUTDIR``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command named on the command line (see ``--help``); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ncbook.course", description=__doc__)
    parser.add_argument("command", choices=["student-edition", "instructor-edition", "otter"])
    parser.add_argument("outdir", help="folder to write into (created if missing)")
    args = parser.parse_args(argv)
    if args.command == "otter":
        from .otter import write_master

        path = write_master(args.outdir)
        print(f"wrote {path}; next: otter assign {path} <dist-folder>")
    else:
        from .editions import write_edition

        paths = write_edition(args.outdir, args.command.split("-")[0])
        print(f"wrote {len(paths)} notebooks to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
