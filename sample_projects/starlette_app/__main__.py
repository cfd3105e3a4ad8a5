"""``python -m sample_projects.starlette_app [--port N]``: serve the sample on 127.0.0.1."""

from __future__ import annotations

import argparse
import os

import uvicorn

from . import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="chatauth Starlette sample app")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="port on 127.0.0.1 (default: $PORT or 8000)",
    )
    args = parser.parse_args()
    app = create_app()
    print(
        f"chatauth Starlette sample, provider {app.state.chatauth.provider.name!r}: "
        f"http://127.0.0.1:{args.port}/"
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
