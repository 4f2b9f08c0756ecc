-- One-time Snowflake setup for the football pipeline, run by an administrator (ACCOUNTADMIN or a
-- role with CREATE INTEGRATION / CREATE DATABASE / MANAGE GRANTS). Everything after this the flow
-- creates itself, idempotently, as INSIGHTFLOW_LOADER: the RAW tables, the JSON file format and the
-- stage (flows/football.py, tasks/football_load.py). Replace the <...> values first.

use role accountadmin;

-- Warehouse, database and the schemas the flow and dbt write to.
create warehouse if not exists insightflow_wh warehouse_size = xsmall auto_suspend = 60 auto_resume = true
    initially_suspended = true;
create database if not exists insightflow;
create schema if not exists insightflow.raw;
create schema if not exists insightflow.football;
create schema if not exists insightflow.football_staging;

-- Storage integration: lets stages read the lake bucket through an IAM role, no keys in Snowflake.
-- After creating it, run `desc integration insightflow_lake;` and pass STORAGE_AWS_IAM_USER_ARN and
-- STORAGE_AWS_EXTERNAL_ID to the AWS stack (`python deploy/stack.py apply --parameter
-- SnowflakeIamUserArn=... --parameter SnowflakeExternalId=...`, docs/aws.md): it creates this role,
-- trusting only that user and external ID, with read access to the lake's raw/football/ prefix
-- (deploy/iam/insightflow-snowflake-policy.json). Pass the integration's name to the flow as
-- storage_integration=insightflow_lake.
create storage integration if not exists insightflow_lake
    type = external_stage
    storage_provider = 's3'
    enabled = true
    storage_aws_role_arn = '<arn:aws:iam::123456789012:role/insightflow-snowflake-lake-read>'
    storage_allowed_locations = ('s3://<lake-bucket>/<bucket-folder>/raw/football/');

-- File format and stage over the lake prefix (the flow also creates them if missing).
create file format if not exists insightflow.raw.football_json type = json;
create stage if not exists insightflow.raw.football_lake
    url = 's3://<lake-bucket>/<bucket-folder>/raw/football/'
    storage_integration = insightflow_lake
    file_format = (format_name = 'insightflow.raw.football_json');

-- The role and user the insightflow-snowflake block logs in as.
create role if not exists insightflow_loader;
grant usage on warehouse insightflow_wh to role insightflow_loader;
grant usage on database insightflow to role insightflow_loader;
grant usage, create table, create stage, create file format on schema insightflow.raw to role insightflow_loader;
grant usage, create table, create view on schema insightflow.football to role insightflow_loader;
grant usage, create table, create view on schema insightflow.football_staging to role insightflow_loader;
grant usage on integration insightflow_lake to role insightflow_loader;
grant usage on stage insightflow.raw.football_lake to role insightflow_loader;
grant usage on file format insightflow.raw.football_json to role insightflow_loader;
-- Key-pair auth is preferred for a service user: set rsa_public_key instead of a password.
create user if not exists insightflow_loader
    default_role = insightflow_loader
    default_warehouse = insightflow_wh
    password = '<a long random password, or omit and set rsa_public_key>'
    must_change_password = false;
grant role insightflow_loader to user insightflow_loader;
