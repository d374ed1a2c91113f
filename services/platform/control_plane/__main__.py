"""``python -m services.platform.control_plane [--host] [--port]`` (``idp control-plane``)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_PORT = 8080


def main(argv: Sequence[str] | None = None, prog: str = "control-plane") -> None:
    from services.http import run_service
    from services.platform.control_plane.app import create_app

    run_service(prog, create_app, DEFAULT_PORT, argv)


if __name__ == "__main__":
    main()
