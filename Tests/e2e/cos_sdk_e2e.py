"""Drives a running MediaQueue with Tencent's own COS/CI Python SDK (cos-python-sdk-v5).

Run by MediaQueueIntegrationTests.SDKTests with MQ_PORT, MQ_BUCKET, MQ_SECRET_ID, MQ_SECRET_KEY,
and MQ_SCHEME=https (with REQUESTS_CA_BUNDLE naming the test CA) for the API behind TLS.
Every check raises on failure; the last line printed is "sdk: ok".
"""
import os
import sys
from urllib.parse import quote

import requests

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_auth import CosS3Auth
from qcloud_cos.cos_exception import CosServiceError

PORT = int(os.environ["MQ_PORT"])
SCHEME = os.environ.get("MQ_SCHEME", "http")
BUCKET = os.environ["MQ_BUCKET"]


def client(secret_id, secret_key):
    config = CosConfig(Region="ap-guangzhou", IP="127.0.0.1", Port=PORT, Scheme=SCHEME,
                       SecretId=secret_id, SecretKey=secret_key)
    return CosS3Client(config)


def one(value):
    """The SDK turns some elements into lists; a single element is what CI sends."""
    return value[0] if isinstance(value, list) else value


def check(condition, what):
    if not condition:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


cos = client(os.environ["MQ_SECRET_ID"], os.environ["MQ_SECRET_KEY"])

# Activate media processing (POST /mediabucket), signed by the SDK's own signer.
activated = cos.send_request(
    method="POST", url=cos._conf.uri(bucket=BUCKET, path="/mediabucket", endpoint=cos._conf._endpoint_ci),
    bucket=BUCKET, auth=CosS3Auth(cos._conf, "/mediabucket", params={}), headers={}, ci_request=True)
check(activated.status_code == 200 and b"<MediaBucket>" in activated.content, "activate the bucket")

queues = cos.ci_get_media_queue(Bucket=BUCKET)
queue = queues["QueueList"][0]
queue_id = queue["QueueId"]
check(queue["Name"] == "queue-1" and queue["State"] == "Active", "list queues: queue-1 is Active")

only = cos.ci_get_media_queue(Bucket=BUCKET, QueueIds=queue_id + ",p0000000000000000000000000000dead")
check(only["NonExistPIDs"]["QueueID"] == "p0000000000000000000000000000dead", "unknown queue ids reported")

rule = {"State": "On", "Type": "TDMQ", "Event": "TaskFinish", "ResultFormat": "JSON",
        "MqMode": "Topic", "MqName": "sdk-events", "MqRegion": "sh"}
paused = cos.ci_update_media_queue(Bucket=BUCKET, QueueId=queue_id,
                                   Request={"Name": "queue-1", "State": "Paused", "NotifyConfig": rule})
check(one(paused["Queue"])["State"] == "Paused", "pause the queue")
check(one(paused["Queue"])["NotifyConfig"]["MqName"] == "sdk-events", "set a callback rule")

created = []
for index in range(3):
    response = cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
        "Tag": "MediaInfo", "Input": {"Object": "input/a.mp4"},
        "Operation": {"UserData": "sdk-%d" % index, "JobLevel": str(index % 3)}})
    detail = one(response["JobsDetail"])
    check(detail["State"] == "Pause", "create job %d (waits as Pause)" % index)
    created.append(detail["JobId"])

described = cos.ci_get_media_jobs(Bucket=BUCKET, JobIDs=",".join(created[:2] + ["j0000000000000000000000000000dead"]))
details = described["JobsDetail"]
check([d["JobId"] for d in details] == created[:2], "get found jobs")
check("j0000000000000000000000000000dead" in str(described.get("NonExistJobIds")), "get reports a missing job")

first = cos.ci_list_media_jobs(Bucket=BUCKET, Tag="MediaInfo", Size=2, QueueId=queue_id)
check(len(first["JobsDetail"]) == 2 and first["NextToken"], "list the first page")
second = cos.ci_list_media_jobs(Bucket=BUCKET, Tag="MediaInfo", Size=2, QueueId=queue_id, NextToken=first["NextToken"])
listed = [d["JobId"] for d in first["JobsDetail"]] + [d["JobId"] for d in second["JobsDetail"]]
check(sorted(listed) == sorted(created), "list the next page")
check(not second.get("NextToken"), "no token after the last page")
filtered = cos.ci_list_media_jobs(Bucket=BUCKET, Tag="MediaInfo", States="Running")
check(not filtered.get("JobsDetail"), "filter by state")

cos.ci_cancel_jobs(Bucket=BUCKET, JobID=created[0])
check(one(cos.ci_get_media_jobs(Bucket=BUCKET, JobIDs=created[0])["JobsDetail"])["State"] == "Cancel", "cancel a job")

enabled = cos.ci_update_media_queue(Bucket=BUCKET, QueueId=queue_id,
                                    Request={"Name": "queue-1", "State": "Active", "NotifyConfig": rule})
check(one(enabled["Queue"])["State"] == "Active", "enable the queue")

try:
    client(os.environ["MQ_SECRET_ID"], "wrong-key").ci_get_media_queue(Bucket=BUCKET)
    check(False, "a wrong key is refused")
except CosServiceError as error:
    check(error.get_status_code() == 403 and error.get_error_code() == "SignatureDoesNotMatch", "a wrong key is refused")


def presigned_queue_list(signed_state, sent_state):
    """GET /<bucket>/queue with the SDK's signature moved from the header into the query, as a
    presigned URL carries it; signed for one state filter, sent with another."""
    url = f"{SCHEME}://127.0.0.1:{PORT}/{BUCKET}/queue"
    request = requests.Request("GET", url, params={"state": signed_state}, headers={"Host": "127.0.0.1"}).prepare()
    CosS3Auth(cos._conf, f"/{BUCKET}/queue", params={"state": signed_state})(request)
    fields = (pair.split("=", 1) for pair in request.headers["Authorization"].split("&"))
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in fields)
    return requests.get(f"{url}?state={sent_state}&{query}", headers={"Host": "127.0.0.1"})


answer = presigned_queue_list("All", "All")
check(answer.status_code == 200 and "<QueueList>" in answer.text, "a presigned URL signed by the SDK lists the queues")
answer = presigned_queue_list("All", "Paused")
check(answer.status_code == 403 and "SignatureDoesNotMatch" in answer.text, "a presigned URL with a changed parameter is refused")

print("sdk: ok")
