"""``python -m services.execution_workers [--host] [--port]``; ``idp execution-workers``
calls ``serve``."""

from __future__ import annotations

import argparse
import logging


def serve(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Run execution-workers with uvicorn until interrupted."""
    import uvicorn

    from services.execution_workers.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="execution-workers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
