"""``python -m services.control_plane [--host] [--port]``; ``idp control-plane`` calls
``serve``."""

from __future__ import annotations

import argparse
import logging


def serve(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the control plane with uvicorn until interrupted."""
    import uvicorn

    from services.control_plane.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="control-plane", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
