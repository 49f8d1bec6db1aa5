"""Entry point of ``jobmon-wrapper`` (console script and zipapp).

``jobmon-wrapper --attach ...`` (or the zipapp called through a link named
``jobmon-daemon``) runs attach mode, see attach.py.
"""

import os
import sys
from typing import List, Optional

from jobmon_wrapper import config


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    invoked = os.path.basename(sys.argv[0]) if argv is None else ""
    if invoked.startswith("jobmon-daemon") or (args and args[0] == "--attach"):
        from jobmon_wrapper import attach

        attach.main(args[1:] if args and args[0] == "--attach" else args)
        return
    if args and args[0] == "--version":
        from jobmon_wrapper import __version__
        print("jobmon-wrapper " + __version__)
        sys.exit(0)
    try:
        cfg = config.load(args)
    except config.UsageError as exc:
        os.write(2, str(exc).encode("utf-8", "replace"))
        os._exit(2)
    if not cfg.argv:
        os.write(2, ("jobmon-wrapper: no executable given\n" + config.USAGE).encode())
        os._exit(2)
    from jobmon_wrapper import wrapper
    wrapper.run(cfg)


if __name__ == "__main__":
    main()
