#!/usr/bin/env python3
"""Makes a user with an access key on a moto S3 server started with INITIAL_NO_AUTH_ACTION_COUNT=3
(its first three requests are not authenticated; every later one must be signed with a key it
knows), and prints `ACCESS_KEY_ID SECRET_ACCESS_KEY`. The test command runs it once, so the S3
tests meet a store that checks signatures, as a real one does.

    s3-test-key.py http://127.0.0.1:PORT
"""
import sys

import boto3

endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="mediaqueue")
iam.put_user_policy(
    UserName="mediaqueue", PolicyName="everything",
    PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
)
key = iam.create_access_key(UserName="mediaqueue")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
