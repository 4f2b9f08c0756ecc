"""What the tests share: fixtures (registered as plugins by tests/conftest.py), loopback stand-ins, helpers."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
