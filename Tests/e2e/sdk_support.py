"""What the SDK scripts share: a client for the service under test (MQ_PORT, MQ_SECRET_ID,
MQ_SECRET_KEY), checks that stop the script with a message, and ffprobe on a downloaded object."""
import json
import os
import subprocess
import sys
import tempfile
import time

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

BUCKET = os.environ["MQ_BUCKET"]
cos = CosS3Client(CosConfig(Region="ap-guangzhou", IP="127.0.0.1", Port=int(os.environ["MQ_PORT"]), Scheme="http",
                            SecretId=os.environ["MQ_SECRET_ID"], SecretKey=os.environ["MQ_SECRET_KEY"]))


def check(condition, what):
    if not condition:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def listed(value):
    """The SDK gives one element as a dict and several as a list: always a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def one(value):
    return listed(value)[0]


def refused(call, code, what, mentions=None, status=None):
    """`call` must fail with CI's error `code` (and `status`), its message naming `mentions`."""
    try:
        call()
    except CosServiceError as error:
        message = error.get_error_msg() or ""
        check((code is None or error.get_error_code() == code) and (status is None or error.get_status_code() == status)
              and (mentions is None or mentions in message),
              "%s (got %s %s: %s)" % (what, error.get_status_code(), error.get_error_code(), message))
        return
    check(False, what + ": it was not refused")


def wait_for(what, read, done, seconds=180):
    """Reads `read()` until `done(value)`; the value is the event the script waits for."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.2)
    check(False, "%s within %d s" % (what, seconds))


def probe(key):
    """ffprobe's streams and format of object `key`."""
    with tempfile.NamedTemporaryFile(suffix=os.path.basename(key)) as file:
        file.write(cos.get_object(Bucket=BUCKET, Key=key)["Body"].get_raw_stream().read())
        file.flush()
        output = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", file.name],
                                check=True, capture_output=True, text=True).stdout
    return json.loads(output)
