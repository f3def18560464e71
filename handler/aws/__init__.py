"""Boto3-free AWS calls for the Lambda functions: `requests` with SigV4 signing from `requests-aws4auth`.

`client.AwsClient` handles endpoints, signing, wire protocols, errors and retries; `sqs`, `sns`,
`eventbridge`, `dynamodb`, `secrets` and `stepfunctions` each add the few calls the function makes.
"""

from handler.aws.client import AwsClient, get_client
from handler.aws.errors import (
    AwsConfigurationError,
    AwsError,
    AwsPermanentError,
    AwsTransientError,
    ConditionalCheckFailed,
)

__all__ = [
    "AwsClient",
    "AwsConfigurationError",
    "AwsError",
    "AwsPermanentError",
    "AwsTransientError",
    "ConditionalCheckFailed",
    "get_client",
]
