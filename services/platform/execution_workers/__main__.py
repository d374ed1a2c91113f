"""``python -m services.platform.execution_workers [--host] [--port]`` (``idp
execution-workers``)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_PORT = 8081


def main(argv: Sequence[str] | None = None, prog: str = "execution-workers") -> None:
    from services.http import run_service
    from services.platform.execution_workers.app import create_app

    run_service(prog, create_app, DEFAULT_PORT, argv)


if __name__ == "__main__":
    main()
