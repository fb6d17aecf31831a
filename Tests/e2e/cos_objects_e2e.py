"""Moves objects through a running MediaQueue with Tencent's COS Python SDK (cos-python-sdk-v5):
put_object, get_object (whole and ranged), head_object, list_objects (prefix, delimiter, paging, url
encoding), delete_object, the CRC-64 the SDKs check, and the refusals (a wrong Content-MD5, a key
that leaves the bucket, a missing key, COS calls this service does not answer).

Run by MediaQueueIntegrationTests.ObjectAPITests with MQ_PORT, MQ_BUCKET, MQ_SECRET_ID,
MQ_SECRET_KEY, MQ_STORAGE (folder or s3); MQ_CLI_KEY names an object the test put with `mediaqueue objects put`, holding
MQ_CLI_BYTES bytes. Every check raises on failure; the last line printed is "objects: ok".
"""
import base64
import hashlib
import os
import tempfile

import crcmod
import requests

from sdk_support import BUCKET, check, cos, refused

# COS's x-cos-hash-crc64ecma, as the SDK's own download check computes it.
crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xffffffffffffffff, rev=True)

payload = os.urandom(3 * 1024 * 1024 + 17)
digest = hashlib.md5(payload).hexdigest()
put = cos.put_object(Bucket=BUCKET, Body=payload, Key="in/big.bin", EnableMD5=True)
check(put["ETag"].strip('"') == digest, "put_object with Content-MD5 answers the MD5 as ETag")

head = cos.head_object(Bucket=BUCKET, Key="in/big.bin")
check(int(head["Content-Length"]) == len(payload) and head["ETag"].strip('"') == digest, "head_object: size and ETag")
check("GMT" in head["Last-Modified"], "head_object: Last-Modified is an HTTP date")
check(put.get("x-cos-hash-crc64ecma") == str(crc64(payload)), "put_object answers the CRC-64 the Go SDK checks every upload against")
if os.environ["MQ_STORAGE"] == "folder":
    check(head.get("x-cos-hash-crc64ecma") == str(crc64(payload)), "head_object gives the object's CRC-64 too")
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, "big.bin")
        cos.download_file(Bucket=BUCKET, Key="in/big.bin", DestFilePath=copy, EnableCRC=True)
        with open(copy, "rb") as downloaded:
            check(downloaded.read() == payload, "download_file with EnableCRC checks the CRC-64 and gets the bytes")

whole = cos.get_object(Bucket=BUCKET, Key="in/big.bin")["Body"].get_raw_stream().read()
check(whole == payload, "get_object returns the bytes put")
part = cos.get_object(Bucket=BUCKET, Key="in/big.bin", Range="bytes=1000-1999")
check(part["Body"].get_raw_stream().read() == payload[1000:2000], "get_object with Range returns that range")
check(part["Content-Range"] == "bytes 1000-1999/%d" % len(payload), "the ranged answer names its range")
tail = cos.get_object(Bucket=BUCKET, Key="in/big.bin", Range="bytes=-10")["Body"].get_raw_stream().read()
check(tail == payload[-10:], "a suffix range returns the last bytes")
rest = cos.get_object(Bucket=BUCKET, Key="in/big.bin", Range="bytes=1000-9223372036854775807")
check(rest["Body"].get_raw_stream().read() == payload[1000:],
      "a range ending at the largest 64-bit integer returns the rest of the object (it once stopped the service)")

for key in ["in/a.mp4", "in/b.mp4", "in/sub/c.mp4", "out/d.jpg", "top.txt"]:
    cos.put_object(Bucket=BUCKET, Body=key.encode(), Key=key)
listed = cos.list_objects(Bucket=BUCKET, Prefix="in/", Delimiter="/")
keys = [entry["Key"] for entry in listed.get("Contents", [])]
prefixes = [entry["Prefix"] for entry in listed.get("CommonPrefixes", [])]
check(keys == ["in/a.mp4", "in/b.mp4", "in/big.bin"] and prefixes == ["in/sub/"], "list_objects with a prefix and a delimiter")
check(listed["IsTruncated"] == "false", "a short listing is not truncated")

seen, marker = [], ""
while True:
    page = cos.list_objects(Bucket=BUCKET, MaxKeys=2, Marker=marker)
    seen += [entry["Key"] for entry in page.get("Contents", [])]
    if page["IsTruncated"] != "true":
        break
    marker = page["NextMarker"]
cli_key = os.environ["MQ_CLI_KEY"]
expected = sorted(["in/a.mp4", "in/b.mp4", "in/big.bin", "in/sub/c.mp4", "out/d.jpg", "top.txt", cli_key])
check(seen == expected, "list_objects pages through every key in order with MaxKeys and Marker")
small = [entry for entry in cos.list_objects(Bucket=BUCKET, Prefix="top")["Contents"]]
check(small[0]["Size"] == str(len(b"top.txt")) and small[0]["ETag"].strip('"') == hashlib.md5(b"top.txt").hexdigest(),
      "a listed object's Size and ETag")

odd = "in/100%25 & more.mp4"  # decoded as it is listed unencoded, this would read "in/100% & more.mp4"
cos.put_object(Bucket=BUCKET, Body=b"odd", Key=odd)
odd_listed = cos.list_objects(Bucket=BUCKET, Prefix="in/100%")
check([entry["Key"] for entry in odd_listed.get("Contents", [])] == [odd],
      "list_objects (which asks for url encoding and decodes) gives a key with % and spaces back as it is")
check(cos.get_object(Bucket=BUCKET, Key=odd_listed["Contents"][0]["Key"])["Body"].get_raw_stream().read() == b"odd",
      "the listed key reads the object")
# The SDK sends a space in the query as "+" (and signs it as "%20"): a prefix and a marker with
# spaces are read as the SDK meant them, and their signature matches.
spaced = cos.list_objects(Bucket=BUCKET, Prefix="in/100%25 & m")
check([entry["Key"] for entry in spaced.get("Contents", [])] == [odd], "list_objects with a space in the prefix")
after = cos.list_objects(Bucket=BUCKET, Prefix="in/", Marker=odd)
check([entry["Key"] for entry in after.get("Contents", [])][:1] == ["in/a.mp4"], "list_objects after a marker with spaces")
cos.delete_object(Bucket=BUCKET, Key=odd)

cli_object = cos.get_object(Bucket=BUCKET, Key=cli_key)["Body"].get_raw_stream().read()
check(len(cli_object) == int(os.environ["MQ_CLI_BYTES"]), "an object put by `mediaqueue objects put` is read through the API")

wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"payload", Key="in/bad.bin", ContentMD5=wrong),
        "BadDigest", "a body that does not match its Content-MD5 is refused", status=400)
refused(lambda: cos.head_object(Bucket=BUCKET, Key="in/bad.bin"), None, status=404, what="the refused upload left no object")
refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="in/meta.bin", Metadata={"x-cos-meta-notes": "n" * 3000}),
        "MetadataTooLarge", "more than 2 KB of x-cos-meta-* headers is refused", mentions="x-cos-meta", status=400)
refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="in/../../etc/passwd"), "InvalidArgument",
        "a key that leaves the bucket is refused", status=400)
refused(lambda: cos.get_object(Bucket=BUCKET, Key="in/missing.mp4"), "NoSuchKey", status=404, what="get_object of a missing key")
refused(lambda: cos.get_object(Bucket=BUCKET, Key="top.txt", Range="bytes=500-600"), "InvalidRange",
        "a range beyond the object is refused", status=416)
# What the SDK does not show: the 416's Content-Range, and the conditional answers.
presigned = cos.get_presigned_url(Bucket=BUCKET, Key="top.txt", Method="GET", SignHost=False)
cos_host = {"Host": "%s.cos.ap-guangzhou.myqcloud.com" % BUCKET}
beyond = requests.get(presigned, headers={**cos_host, "Range": "bytes=500-600"})
check(beyond.status_code == 416 and beyond.headers.get("Content-Range") == "bytes */7", "a 416 names the object's size in Content-Range")
top_etag = cos.head_object(Bucket=BUCKET, Key="top.txt")["ETag"]
unchanged = requests.get(presigned, headers={**cos_host, "If-None-Match": top_etag})
check(unchanged.status_code == 304 and not unchanged.content and unchanged.headers.get("ETag") == top_etag,
      "If-None-Match with the object's ETag answers 304 without the body")
since = requests.get(presigned, headers={**cos_host, "If-Modified-Since": unchanged.headers["Last-Modified"]})
check(since.status_code == 304, "If-Modified-Since its Last-Modified answers 304")
check(requests.get(presigned, headers={**cos_host, "If-None-Match": '"0000"'}).content == b"top.txt",
      "If-None-Match with another ETag gets the object")
if os.environ["MQ_STORAGE"] == "s3":
    # Above the multipart threshold (5 MiB here), S3's ETag is not the MD5: the PUT must answer
    # the one HEAD and GET give, or a client's If-Match with it fails.
    parts = os.urandom(11 * 1024 * 1024)
    put_parts = cos.put_object(Bucket=BUCKET, Body=parts, Key="in/parts.bin")
    head_parts = cos.head_object(Bucket=BUCKET, Key="in/parts.bin")
    check(put_parts["ETag"] == head_parts["ETag"] and head_parts["ETag"].strip('"').endswith("-3"),
          "a multipart upload's PUT answers the ETag the store gives it: %s, %s" % (put_parts["ETag"], head_parts["ETag"]))
    check(cos.get_object(Bucket=BUCKET, Key="in/parts.bin", IfMatch=put_parts["ETag"])["Body"].get_raw_stream().read() == parts,
          "If-Match with the PUT's ETag gets the object")
    cos.delete_object(Bucket=BUCKET, Key="in/parts.bin")
refused(lambda: cos.get_object(Bucket=BUCKET, Key="top.txt", IfMatch='"0000"'), "PreconditionFailed",
        "get_object with If-Match of another ETag is refused", status=412)
refused(lambda: cos.get_object(Bucket=BUCKET, Key="top.txt", IfMatch="W/" + top_etag), "PreconditionFailed",
        "If-Match compares strongly: a weak tag of the same value does not match", status=412)
busted = requests.get(presigned + "&t=1700000000", headers=cos_host)
check(busted.status_code == 200 and busted.content == b"top.txt", "a read with a parameter that is not a COS call (a cache-buster) is served")
check(cos.get_object(Bucket=BUCKET, Key="top.txt", IfMatch=top_etag)["Body"].get_raw_stream().read() == b"top.txt",
      "get_object with If-Match of its ETag gets the object")

refused(lambda: cos.list_objects(Bucket=BUCKET, Prefix="../"), "InvalidArgument", "a prefix that leaves the bucket is refused", status=400)
refused(lambda: cos.list_objects(Bucket=BUCKET, Prefix="in/../../x"), "InvalidArgument", "so is one that climbs out of a folder", status=400)
# A "/" followed by a combining mark is one character with it: looking for the character "/"
# missed it, and the local store's listing once stopped the service on such a prefix.
combined = cos.list_objects(Bucket=BUCKET, Prefix="in/\u0301")
check(not combined.get("Contents"), "a prefix whose last / carries a combining mark lists nothing (and the service keeps running)")
check([entry["Key"] for entry in cos.list_objects(Bucket=BUCKET, Prefix="in/a")["Contents"]] == ["in/a.mp4"], "the service still lists")
refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="in/odd\uffff.mp4"), "InvalidArgument",
        "a key with a character XML cannot carry is refused", status=400)

# COS's sub-resources and server-side copy are other calls: refused, and the object is untouched.
refused(lambda: cos.put_object_acl(Bucket=BUCKET, Key="top.txt", ACL="private"), "NotImplemented",
        "put_object_acl (PUT ?acl) is refused", status=501)
refused(lambda: cos.delete_object_tagging(Bucket=BUCKET, Key="top.txt"), "NotImplemented",
        "delete_object_tagging (DELETE ?tagging) is refused", status=501)
refused(lambda: cos.copy_object(Bucket=BUCKET, Key="copy.txt", CopySource={"Bucket": BUCKET, "Key": "top.txt", "Region": "ap-guangzhou"}),
        "NotImplemented", "copy_object (x-cos-copy-source) is refused", status=501)
check(cos.get_object(Bucket=BUCKET, Key="top.txt")["Body"].get_raw_stream().read() == b"top.txt",
      "the object those calls named is as it was")
refused(lambda: cos.head_object(Bucket=BUCKET, Key="copy.txt"), None, status=404, what="and no copy was written")

# What this service cannot keep is refused as the request's fault (400), not its own (500).
refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="in/" + "\u00e9" * 130 + ".mp4"), "InvalidArgument",
        "a key with a part over 255 bytes between slashes is refused", mentions="255", status=400)
if os.environ["MQ_STORAGE"] == "folder":
    refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="top.txt/inner.txt"), "InvalidArgument",
            "the folder storage refuses a key under an object's name", mentions="folder storage", status=400)
    refused(lambda: cos.put_object(Bucket=BUCKET, Body=b"x", Key="in/sub"), "InvalidArgument",
            "and an object named as the folder of others", mentions="folder storage", status=400)
    check(cos.get_object(Bucket=BUCKET, Key="top.txt")["Body"].get_raw_stream().read() == b"top.txt", "the object in the way is as it was")

cos.delete_object(Bucket=BUCKET, Key="in/sub")
check([e["Key"] for e in cos.list_objects(Bucket=BUCKET, Prefix="in/sub/")["Contents"]] == ["in/sub/c.mp4"],
      "deleting a key that is a folder removes no object under it")
cos.delete_object(Bucket=BUCKET, Key="in/a.mp4")
refused(lambda: cos.head_object(Bucket=BUCKET, Key="in/a.mp4"), None, status=404, what="delete_object removes the object")
cos.delete_object(Bucket=BUCKET, Key="in/a.mp4")
refused(lambda: cos.head_object(Bucket=BUCKET, Key="in/a.mp4"), None, status=404,
        what="deleting a missing object is fine, and it stays missing")

print("objects: ok")
