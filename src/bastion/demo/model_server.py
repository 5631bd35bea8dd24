"""The careless team's model server, as its own process: `python -m bastion.demo.model_server`.

Prints `READY <url>` on stdout once it listens, so the demo knows where it is.
Serves the deterministic demo model over OIP v2 with every flaw the vulnerable
test server has (no auth, no limit, raw scores, tracebacks, leaky metadata).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the demo server listens on loopback only")

    import uvicorn

    from bastion.demo.careless import MODEL_NAME, train
    from bastion.guard.adapters.listener import listen
    from bastion.testing.servers import ServerConfig, model_app

    app = model_app(train().model, ServerConfig.vulnerable(model_name=MODEL_NAME, bounds=(0, 16)))
    # Bind and listen first, then announce: connections queue until uvicorn accepts.
    sock = listen(args.host, args.port, backlog=128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", server_header=False
    )
    print(f"READY http://{args.host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
