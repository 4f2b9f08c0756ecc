"""An Athena stand-in over moto: ``python -m standins.aws --port PORT`` (see server.py and docs/aws.md)."""

from standins.aws.server import AwsStandIn

__all__ = ["AwsStandIn"]
