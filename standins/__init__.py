"""Test doubles for the cloud services InsightFlow runs on, kept in this repository (not shipped).

``standins.aws`` is one loopback endpoint that answers the Athena API itself and forwards every other AWS
service to moto, so the production path (S3 → Glue → dbt on Athena → report) runs with no cloud. Product
code never imports this package (tests/unit/test_architecture.py); the image does not ship it.
"""
