"""Write deploy/cloudformation/insightflow.yaml: InsightFlow's whole AWS side as one CloudFormation stack.

The template is generated, never edited by hand: its IAM policy documents come from the files in
deploy/iam/ (deploy/iam/render.py's ``cloudformation``), so the policies exist once.
``python deploy/cloudformation/generate.py`` rewrites the file; ``--check`` exits 1 when it is stale
(tests/deploy/cloudformation/test_generate.py runs that). ``python deploy/stack.py apply`` deploys it.

What the stack holds (docs/aws.md section 1):
- the lake bucket (public access blocked, TLS-only policy, SSE-S3, owner-enforced, a rule aborting
  incomplete multipart uploads after a day; kept when the stack is deleted) and the Athena results
  bucket (the same, plus expiry of old results);
- the Glue databases of the raw tables and of dbt's models (kept on delete), the Athena work group
  (its result location enforced, a per-query bytes-scanned cutoff);
- the roles: the flows' task role (exactly deploy/iam/insightflow-task-policy.json), the task execution
  role, the Prefect ECS worker's role;
- the ECR repository (scan on push, lifecycle), the ECS cluster, the flow runs' log group (retention),
  the Secrets Manager secret for the Prefect API key or auth string;
- by parameter: the Glue crawler and its role, the role Snowflake's storage integration assumes (trusting
  Snowflake's IAM user with the integration's external ID), and GitHub Actions' OIDC provider and deploy role.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "insightflow.yaml"
sys.path.insert(0, str(HERE.parent / "iam"))
import render  # noqa: E402  (deploy/iam/render.py: a script directory, not a package)

sys.path.pop(0)

# Each placeholder of deploy/iam/*.json -> the parameter or pseudo parameter Fn::Sub puts in its place.
NAMES = {
    "AWS_ACCOUNT_ID": "AWS::AccountId",
    "AWS_REGION": "AWS::Region",
    "STACK_NAME": "AWS::StackName",
    "LAKE_BUCKET": "LakeBucketName",
    "LAKE_PREFIX": "LakePrefix",
    "ATHENA_RESULTS_BUCKET": "AthenaResultsBucketName",
    "ATHENA_RESULTS_PREFIX": "AthenaResultsPrefix",
    "GLUE_DATABASE": "GlueDatabaseName",
    "ATHENA_SCHEMA": "AthenaSchemaName",
    "ATHENA_WORK_GROUP": "WorkGroupName",
    "ECS_CLUSTER": "ClusterName",
    "TASK_ROLE_NAME": "TaskRoleName",
    "EXECUTION_ROLE_NAME": "TaskExecutionRoleName",
    "ECR_REPOSITORY": "EcrRepositoryName",
    "LOG_GROUP": "LogGroupName",
    "GLUE_CRAWLER": "GlueCrawlerName",
    "PREFECT_API_SECRET_NAME": "PrefectApiSecretName",
}
# Optional placeholders -> the condition under which statements using them exist (render drops them when unset).
CONDITIONS = {"GLUE_CRAWLER": "HasCrawler"}
# The template's policy document of each deploy/iam kind: (resource, index in its Policies list).
POLICY_OF = {
    "task": "TaskRole",
    "execution": "TaskExecutionRole",
    "worker": "WorkerRole",
    "crawler": "CrawlerRole",
    "snowflake": "SnowflakeStorageIntegrationRole",
    "deploy": "GitHubDeployRole",
}

FOLDER = r"^$|^[a-z0-9][a-zA-Z0-9_.=-]*(/[a-zA-Z0-9_.=-]+)*/$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
GLUE_NAME = r"^[a-z0-9_]{1,255}$"


def _param(description: str, default: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": extra.pop("Type", "String"), "Description": description}
    if default is not None:
        out["Default"] = default
    return {**out, **extra}


PARAMETERS = {
    "LakeBucketName": _param("The lake's S3 bucket (created; kept when the stack is deleted)", AllowedPattern=BUCKET),
    "LakePrefix": _param("Folder inside the lake bucket, empty or ending in / (e.g. prod/)", "", AllowedPattern=FOLDER),
    "AthenaResultsBucketName": _param("The Athena query results bucket (created)", AllowedPattern=BUCKET),
    "AthenaResultsPrefix": _param("Folder inside the results bucket, empty or ending in /", "", AllowedPattern=FOLDER),
    "AthenaResultsExpirationDays": _param(
        "Days after which Athena query results are deleted", 30, Type="Number", MinValue=1
    ),
    "GlueDatabaseName": _param("Glue database of the raw lake tables", "insightflow_raw", AllowedPattern=GLUE_NAME),
    "AthenaSchemaName": _param(
        "Glue database (Athena schema) dbt builds its models in", "insightflow", AllowedPattern=GLUE_NAME
    ),
    "WorkGroupName": _param("Athena work group the flows and dbt query in", "insightflow"),
    "BytesScannedCutoffPerQuery": _param(
        "Athena cancels a query scanning more than this many bytes (10 GiB; minimum 10 MB)",
        10737418240,
        Type="Number",
        MinValue=10000000,
    ),
    "ClusterName": _param("ECS cluster the flow runs start on", "insightflow"),
    "EcrRepositoryName": _param("ECR repository of the flows' image", "insightflow"),
    "KeepImages": _param("Tagged images the ECR repository keeps (older ones expire)", 30, Type="Number", MinValue=1),
    "LogGroupName": _param("CloudWatch log group of the flow runs' containers", "/insightflow/flow-runs"),
    "LogRetentionDays": _param(
        "Days the flow runs' logs are kept",
        30,
        Type="Number",
        AllowedValues=[
            1,
            3,
            5,
            7,
            14,
            30,
            60,
            90,
            120,
            150,
            180,
            365,
            400,
            545,
            731,
            1096,
            1827,
            2192,
            2557,
            2922,
            3288,
            3653,
        ],
    ),
    "TaskRoleName": _param("Role of the flows' ECS tasks (S3, Glue, Athena)", "insightflow-task"),
    "TaskExecutionRoleName": _param("Role ECS starts the flows' containers with", "insightflow-task-execution"),
    "WorkerRoleName": _param("Role of the Prefect ECS worker", "insightflow-worker"),
    "PrefectApiSecretName": _param(
        "Secrets Manager secret holding the Prefect API key (Cloud) or auth string (self-hosted)",
        "insightflow/prefect-api",
    ),
    "GlueCrawlerName": _param(
        "A Glue crawler over the lake's raw/ folder (the 'crawler' catalog mode); empty: none", ""
    ),
    "SnowflakeIamUserArn": _param(
        "STORAGE_AWS_IAM_USER_ARN of `desc integration insightflow_lake`; empty: no Snowflake role", ""
    ),
    "SnowflakeExternalId": _param("STORAGE_AWS_EXTERNAL_ID of the same integration", "", NoEcho=True),
    "SnowflakeRoleName": _param(
        "Role named in the storage integration's STORAGE_AWS_ROLE_ARN", "insightflow-snowflake-lake-read"
    ),
    "GitHubRepository": _param("owner/name of the GitHub repository deploying on merge; empty: no deploy role", ""),
    "GitHubBranch": _param("The branch whose workflow runs may assume the deploy role", "main"),
    "CreateGitHubOidcProvider": _param(
        "Create the account's GitHub OIDC provider (false when the account already has one)",
        "true",
        AllowedValues=["true", "false"],
    ),
    "DeployRoleName": _param("Role GitHub Actions assumes through OIDC to deploy", "insightflow-github-deploy"),
}

CONDITIONS_BLOCK = {
    "HasCrawler": {"Fn::Not": [{"Fn::Equals": [{"Ref": "GlueCrawlerName"}, ""]}]},
    "HasSnowflake": {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "SnowflakeIamUserArn"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "SnowflakeExternalId"}, ""]}]},
        ]
    },
    "HasGitHub": {"Fn::Not": [{"Fn::Equals": [{"Ref": "GitHubRepository"}, ""]}]},
    "CreateOidcProvider": {
        "Fn::And": [{"Condition": "HasGitHub"}, {"Fn::Equals": [{"Ref": "CreateGitHubOidcProvider"}, "true"]}]
    },
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _policies(kind: str) -> list[dict[str, Any]]:
    return [{"PolicyName": f"insightflow-{kind}", "PolicyDocument": render.cloudformation(kind, NAMES, CONDITIONS)}]


def _trust(principal: dict[str, Any], action: str = "sts:AssumeRole", condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


ECS_TASKS = _trust(
    {"Service": "ecs-tasks.amazonaws.com"}, condition={"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
)


def _bucket(name_param: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketName": {"Ref": name_param},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {"Rules": rules},
        },
    }


ABORT_UPLOADS = {
    "Id": "abort-incomplete-multipart-uploads",
    "Status": "Enabled",
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


def _tls_only(bucket: str) -> dict[str, Any]:
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            {"Fn::GetAtt": [bucket, "Arn"]},
                            _sub("${" + bucket + ".Arn}/*"),
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }


def _glue_database(name_param: str, description: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Glue::Database",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseInput": {"Name": {"Ref": name_param}, "Description": description},
        },
    }


ECR_LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Untagged images (replaced tags, failed pushes) go after a week",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "Keep the newest KeepImages images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0},
            "action": {"type": "expire"},
        },
    ]
}


def _ecr_lifecycle() -> dict[str, Any]:
    text = json.dumps(ECR_LIFECYCLE, separators=(",", ":")).replace('"countNumber":0', '"countNumber":${KeepImages}')
    return _sub(text)


RESOURCES: dict[str, Any] = {
    "LakeBucket": _bucket("LakeBucketName", [ABORT_UPLOADS]),
    "LakeBucketPolicy": _tls_only("LakeBucket"),
    "AthenaResultsBucket": _bucket(
        "AthenaResultsBucketName",
        [
            ABORT_UPLOADS,
            {
                "Id": "expire-query-results",
                "Status": "Enabled",
                "ExpirationInDays": {"Ref": "AthenaResultsExpirationDays"},
            },
        ],
    ),
    "AthenaResultsBucketPolicy": _tls_only("AthenaResultsBucket"),
    "GlueRawDatabase": _glue_database("GlueDatabaseName", "InsightFlow's raw lake tables (one per dataset)"),
    "GlueDbtDatabase": _glue_database("AthenaSchemaName", "InsightFlow's dbt models on Athena"),
    "AthenaWorkGroup": {
        "Type": "AWS::Athena::WorkGroup",
        "Properties": {
            "Name": {"Ref": "WorkGroupName"},
            "Description": "InsightFlow: the flows' and dbt's queries",
            "State": "ENABLED",
            "RecursiveDeleteOption": True,
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "PublishCloudWatchMetricsEnabled": True,
                "BytesScannedCutoffPerQuery": {"Ref": "BytesScannedCutoffPerQuery"},
                "ResultConfiguration": {
                    "OutputLocation": _sub("s3://${AthenaResultsBucket}/${AthenaResultsPrefix}staging/"),
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                },
            },
        },
    },
    "TaskRole": {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "TaskRoleName"},
            "Description": "InsightFlow flow runs (ECS tasks): the lake, Glue catalog and Athena work group",
            "AssumeRolePolicyDocument": ECS_TASKS,
            "Policies": _policies("task"),
        },
    },
    "TaskExecutionRole": {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "TaskExecutionRoleName"},
            "Description": "ECS starting InsightFlow's containers: pull the image, write logs, read the API secret",
            "AssumeRolePolicyDocument": ECS_TASKS,
            "Policies": _policies("execution"),
        },
    },
    "WorkerRole": {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "WorkerRoleName"},
            "Description": "The Prefect ECS worker: run the flows' task definitions on the cluster",
            "AssumeRolePolicyDocument": ECS_TASKS,
            "Policies": _policies("worker"),
        },
    },
    "EcrRepository": {
        "Type": "AWS::ECR::Repository",
        "Properties": {
            "RepositoryName": {"Ref": "EcrRepositoryName"},
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "MUTABLE",
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
            "EmptyOnDelete": True,
            "LifecyclePolicy": {"LifecyclePolicyText": _ecr_lifecycle()},
        },
    },
    "EcsCluster": {
        "Type": "AWS::ECS::Cluster",
        "Properties": {
            "ClusterName": {"Ref": "ClusterName"},
            "CapacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "DefaultCapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
        },
    },
    "FlowRunLogGroup": {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {"LogGroupName": {"Ref": "LogGroupName"}, "RetentionInDays": {"Ref": "LogRetentionDays"}},
    },
    "PrefectApiSecret": {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": {"Ref": "PrefectApiSecretName"},
            "Description": (
                "Prefect API key (Cloud) or auth string (self-hosted) for the flow runs; "
                "`python deploy/stack.py apply` sets it from PREFECT_API_KEY or PREFECT_API_AUTH_STRING"
            ),
            # A random placeholder until the apply command puts the real value (never a template value).
            "GenerateSecretString": {"PasswordLength": 32, "ExcludePunctuation": True},
        },
    },
    "CrawlerRole": {
        "Type": "AWS::IAM::Role",
        "Condition": "HasCrawler",
        "Properties": {
            "RoleName": _sub("${GlueCrawlerName}-crawler"),
            "Description": "The Glue crawler over InsightFlow's lake",
            "AssumeRolePolicyDocument": _trust({"Service": "glue.amazonaws.com"}),
            "Policies": _policies("crawler"),
        },
    },
    "GlueCrawler": {
        "Type": "AWS::Glue::Crawler",
        "Condition": "HasCrawler",
        "Properties": {
            "Name": {"Ref": "GlueCrawlerName"},
            "Role": {"Fn::GetAtt": ["CrawlerRole", "Arn"]},
            "DatabaseName": {"Ref": "GlueDatabaseName"},
            "Targets": {"S3Targets": [{"Path": _sub("s3://${LakeBucket}/${LakePrefix}raw/")}]},
            "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        },
    },
    "SnowflakeStorageIntegrationRole": {
        "Type": "AWS::IAM::Role",
        "Condition": "HasSnowflake",
        "Properties": {
            "RoleName": {"Ref": "SnowflakeRoleName"},
            "Description": "Snowflake's storage integration reading the football snapshots in the lake",
            "AssumeRolePolicyDocument": _trust(
                {"AWS": {"Ref": "SnowflakeIamUserArn"}},
                condition={"StringEquals": {"sts:ExternalId": {"Ref": "SnowflakeExternalId"}}},
            ),
            "Policies": _policies("snowflake"),
        },
    },
    "GitHubOidcProvider": {
        "Type": "AWS::IAM::OIDCProvider",
        "Condition": "CreateOidcProvider",
        "Properties": {"Url": "https://token.actions.githubusercontent.com", "ClientIdList": ["sts.amazonaws.com"]},
    },
    "GitHubDeployRole": {
        "Type": "AWS::IAM::Role",
        "Condition": "HasGitHub",
        "Properties": {
            "RoleName": {"Ref": "DeployRoleName"},
            "Description": "GitHub Actions deploying InsightFlow on merge (OIDC; no stored keys)",
            "AssumeRolePolicyDocument": _trust(
                {
                    "Federated": {
                        "Fn::If": [
                            "CreateOidcProvider",
                            {"Ref": "GitHubOidcProvider"},
                            _sub("arn:aws:iam::${AWS::AccountId}:oidc-provider/token.actions.githubusercontent.com"),
                        ]
                    }
                },
                action="sts:AssumeRoleWithWebIdentity",
                condition={
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": _sub(
                            "repo:${GitHubRepository}:ref:refs/heads/${GitHubBranch}"
                        ),
                    }
                },
            ),
            "Policies": _policies("deploy"),
        },
    },
}


def _output(description: str, value: Any, condition: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"Description": description, "Value": value}
    if condition:
        out["Condition"] = condition
    return out


# blocks/stack.py maps these to the variables `python -m blocks register` reads.
OUTPUTS = {
    "Region": _output("Region of everything in the stack", {"Ref": "AWS::Region"}),
    "LakeBucket": _output("The lake bucket", {"Ref": "LakeBucket"}),
    "LakePrefix": _output("Folder inside the lake bucket", _sub("${LakePrefix}")),
    "AthenaResultsBucket": _output("The Athena results bucket", {"Ref": "AthenaResultsBucket"}),
    "AthenaResultsPrefix": _output("Folder inside the results bucket", _sub("${AthenaResultsPrefix}")),
    "GlueDatabase": _output("Glue database of the raw tables", {"Ref": "GlueDatabaseName"}),
    "AthenaSchema": _output("Glue database of dbt's models", {"Ref": "AthenaSchemaName"}),
    "AthenaWorkGroup": _output("Athena work group", {"Ref": "WorkGroupName"}),
    "EcsCluster": _output("ECS cluster", {"Ref": "EcsCluster"}),
    "EcrRepositoryUri": _output("Image name for prefect deploy", {"Fn::GetAtt": ["EcrRepository", "RepositoryUri"]}),
    "TaskRoleArn": _output("task_role_arn of the ECS pool", {"Fn::GetAtt": ["TaskRole", "Arn"]}),
    "TaskExecutionRoleArn": _output("execution_role_arn of the ECS pool", {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]}),
    "WorkerRoleArn": _output("Role of the ECS worker's service", {"Fn::GetAtt": ["WorkerRole", "Arn"]}),
    "LogGroup": _output("The flow runs' log group", {"Ref": "LogGroupName"}),
    "PrefectApiSecretArn": _output("ARN of the Prefect API secret", {"Ref": "PrefectApiSecret"}),
    "GlueCrawler": _output("The Glue crawler", {"Ref": "GlueCrawlerName"}, "HasCrawler"),
    "SnowflakeRoleArn": _output(
        "STORAGE_AWS_ROLE_ARN of the storage integration",
        {"Fn::GetAtt": ["SnowflakeStorageIntegrationRole", "Arn"]},
        "HasSnowflake",
    ),
    "GitHubDeployRoleArn": _output(
        "role-to-assume of .github/workflows/deploy.yml", {"Fn::GetAtt": ["GitHubDeployRole", "Arn"]}, "HasGitHub"
    ),
}


def template() -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "InsightFlow: lake, catalog, Athena, ECS, roles (generated by deploy/cloudformation/generate.py)",
        "Parameters": PARAMETERS,
        "Conditions": CONDITIONS_BLOCK,
        "Resources": RESOURCES,
        "Outputs": OUTPUTS,
    }


HEADER = (
    "# Generated by deploy/cloudformation/generate.py from it and deploy/iam/*.json: do not edit by hand.\n"
    "# Deploy with `python deploy/stack.py apply` (docs/aws.md, section 1).\n"
)


class _NoAliases(yaml.SafeDumper):
    """CloudFormation rejects YAML anchors and aliases: every shared piece is written out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def text() -> str:
    return HEADER + yaml.dump(template(), Dumper=_NoAliases, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/cloudformation/generate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed template is out of date")
    args = parser.parse_args(argv)
    wanted = text()
    if args.check:
        if not TEMPLATE.exists() or TEMPLATE.read_text() != wanted:
            print(f"{TEMPLATE.name} is out of date: run python deploy/cloudformation/generate.py", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(wanted)
    print(f"wrote {TEMPLATE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
