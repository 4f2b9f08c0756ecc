"""``python -m standins.aws --port PORT``: serve the AWS stand-in until interrupted.

Prints ``ready http://127.0.0.1:PORT`` once the endpoint answers (scripts and people wait for that
line), then the variables to export so AWS SDKs, prefect-aws blocks and dbt-athena use it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import httpx

from standins.aws.server import AwsStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.aws", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4566, help="loopback port to listen on (default 4566)")
    parser.add_argument("--region", default="us-east-1", help="region to suggest in the printed exports")
    args = parser.parse_args(argv)
    standin = AwsStandIn(port=args.port).start()
    httpx.get(f"{standin.url}/moto-api/", timeout=10)  # answers before we say so
    print(f"ready {standin.url}", flush=True)
    print(
        "# in another shell, to use it:\n"
        f"export AWS_ENDPOINT_URL={standin.url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"AWS_DEFAULT_REGION={args.region} AWS_REGION={args.region}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
