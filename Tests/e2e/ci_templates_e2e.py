"""Custom templates through a running MediaQueue with Tencent's COS Python SDK: create, list
(Custom and Official), update, use in a transcode job, delete; and the refusals.

Run by MediaQueueIntegrationTests.TemplateAPITests with MQ_PORT, MQ_BUCKET, MQ_SECRET_ID,
MQ_SECRET_KEY and MQ_VIDEO (a local video to upload). Every check raises on failure; the last
line printed is "templates: ok".
"""
import os

from sdk_support import BUCKET, check, cos, one, probe, refused, wait_for


def finished(job_id):
    return wait_for("job %s to end" % job_id, lambda: one(cos.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"]),
                    lambda detail: detail["State"] in ("Success", "Failed", "Cancel"))


small = {"Tag": "Transcode", "Name": "small-mp4",
         "Container": {"Format": "mp4"},
         "Video": {"Codec": "H.264", "Width": "256", "Height": "192", "Bitrate": "200"},
         "Audio": {"Codec": "aac", "Bitrate": "64"}}
created = one(cos.ci_create_template(Bucket=BUCKET, Template=small)["Template"])
template_id = created["TemplateId"]
check(template_id.startswith("t") and created["Category"] == "Custom" and created["Tag"] == "Transcode",
      "ci_create_template makes a Custom Transcode template")
check(created["TransTpl"]["Video"]["Height"] == "192", "the answer shows the parameters under TransTpl")

listed = cos.ci_get_template(Bucket=BUCKET)
check([t["TemplateId"] for t in listed["TemplateList"]] == [template_id] and listed["TotalCount"] == "1",
      "ci_get_template lists the bucket's Custom templates")
official = cos.ci_get_template(Bucket=BUCKET, Category="Official", PageSize=100)
check(int(official["TotalCount"]) >= 5 and all(t["Category"] == "Official" for t in official["TemplateList"]),
      "ci_get_template with Category=Official lists the built-in templates")
snapshot_official = [t for t in official["TemplateList"] if t["Tag"] == "Snapshot"][0]["TemplateId"]
check(not cos.ci_get_template(Bucket=BUCKET, Name="nothing-").get("TemplateList"), "a name prefix filters")

small["Video"]["Height"] = "144"
small["Video"]["Width"] = "176"
small["Name"] = "small-mp4-v2"
updated = one(cos.ci_update_template(Bucket=BUCKET, TemplateId=template_id, Template=small)["Template"])
check(updated["Name"] == "small-mp4-v2" and updated["TransTpl"]["Video"]["Height"] == "144", "ci_update_template changes it")

with open(os.environ["MQ_VIDEO"], "rb") as video:
    cos.put_object(Bucket=BUCKET, Body=video.read(), Key="in/clip.mp4")
job = one(cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
    "Tag": "Transcode", "Input": {"Object": "in/clip.mp4"},
    "Operation": {"TemplateId": template_id, "Output": {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": "out/clip-small.mp4"}}})["JobsDetail"])
check(job["Operation"]["TemplateName"] == "small-mp4-v2", "a job naming the template echoes its TemplateName")
done = finished(job["JobId"])
check(done["State"] == "Success", "the transcode with the custom template succeeds (%s %s)" % (done.get("Code"), done.get("Message")))
streams = probe("out/clip-small.mp4")["streams"]
video = [s for s in streams if s["codec_type"] == "video"][0]
check((video["width"], video["height"]) == (176, 144) and video["codec_name"] == "h264",
      "ffprobe: the output has the updated template's size and codec")

shot = one(cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
    "Tag": "Snapshot", "Input": {"Object": "in/clip.mp4"},
    "Operation": {"TemplateId": snapshot_official, "Output": {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": "out/shot-${Number}.jpg"}}})["JobsDetail"])
check(finished(shot["JobId"])["State"] == "Success", "a built-in (Official) template still runs")

refused(lambda: cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
    "Tag": "Snapshot", "Input": {"Object": "in/clip.mp4"},
    "Operation": {"TemplateId": template_id, "Output": {"Object": "out/x-${Number}.jpg"}}}),
    "InvalidArgument", "a Transcode template in a Snapshot job is refused", mentions="Transcode template")
refused(lambda: cos.ci_create_template(Bucket=BUCKET, Template={"Tag": "Transcode", "Name": "bad", "Container": {"Format": "mp4"},
                                                                 "Video": {"Codec": "NoSuchCodec"}}),
        "InvalidArgument", "a template with a parameter its job type refuses", mentions="Request.Video")
refused(lambda: cos.ci_create_template(Bucket=BUCKET, Template={"Tag": "Teleport", "Name": "bad"}),
        "InvalidArgument", "an unknown template Tag is refused", mentions="Tag")

cos.ci_delete_template(Bucket=BUCKET, TemplateId=template_id)
check(not cos.ci_get_template(Bucket=BUCKET).get("TemplateList"), "ci_delete_template removes it")
refused(lambda: cos.ci_delete_template(Bucket=BUCKET, TemplateId=template_id), "NoSuchTemplate", "deleting it again is refused")
refused(lambda: cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
    "Tag": "Transcode", "Input": {"Object": "in/clip.mp4"},
    "Operation": {"TemplateId": template_id, "Output": {"Object": "out/y.mp4"}}}),
    "InvalidArgument", "a job naming a deleted template is refused", mentions=template_id)

print("templates: ok")
