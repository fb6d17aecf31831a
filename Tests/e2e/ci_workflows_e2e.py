"""A workflow from upload to WorkflowFinish through a running MediaQueue, with Tencent's COS
Python SDK: a custom template, a workflow (Transcode and Snapshot in parallel, Animation after the
Transcode), put_object under its prefix, the run's tasks and outputs, a trigger on an existing
object, a paused workflow, a failing node, and the refusals.

Run by MediaQueueIntegrationTests.WorkflowAPITests with MQ_PORT, MQ_BUCKET, MQ_SECRET_ID,
MQ_SECRET_KEY, MQ_VIDEO (a local video) and MQ_RECEIVER (the URL the callbacks go to). Prints
`run: <RunId>` for each run the receiver should hear of; every check raises on failure; the last
line printed is "workflows: ok".
"""
import json
import os

from qcloud_cos.cos_auth import CosS3Auth
from qcloud_cos.cos_comm import xml_to_dict

from sdk_support import BUCKET, check, cos, listed, probe, refused, wait_for


def runs(workflow_id, **filters):
    return listed(cos.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId=workflow_id, **filters).get("WorkflowExecutionList"))


def ended(run_id):
    return wait_for("run %s to end" % run_id, lambda: listed(cos.ci_get_workflowexecution(Bucket=BUCKET, RunId=run_id)["WorkflowExecution"])[0],
                    lambda execution: execution["State"] != "Running")


template = cos.ci_create_template(Bucket=BUCKET, Template={
    "Tag": "Transcode", "Name": "wf-small", "Container": {"Format": "mp4"},
    "Video": {"Codec": "H.264", "Width": "320", "Height": "240", "Bitrate": "300"}, "Audio": {"Codec": "aac", "Bitrate": "64"}})
template_id = listed(template["Template"])[0]["TemplateId"]
builtin_snapshot = [t for t in listed(cos.ci_get_template(Bucket=BUCKET, Category="Official", PageSize=100)["TemplateList"])
                    if t["Name"] == "JPG-Cover"][0]["TemplateId"]
builtin_gif = [t for t in listed(cos.ci_get_template(Bucket=BUCKET, Category="Official", PageSize=100)["TemplateList"])
               if t["Tag"] == "Animation"][0]["TemplateId"]


def output(key):
    return {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": key}


def ci_get(path, **params):
    """A signed GET of CI's `path` with query parameters the Python SDK has no argument for (the Go
    SDK's `WorkflowId` of DescribeMediaJobs, `JobId` of DescribeWorkflowExecutions), signed and
    sent the way its own calls are."""
    url = cos._conf.uri(bucket=BUCKET, path=path, endpoint=cos._conf._endpoint_ci)
    answer = cos.send_request(method="GET", url=url, bucket=BUCKET, auth=CosS3Auth(cos._conf, path, params=params),
                              params=params, headers={}, ci_request=True)
    return xml_to_dict(answer.content)


def workflow_body(name, state="Active", nodes=None, dependencies=None):
    return {"MediaWorkflow": {"Name": name, "State": state, "Topology": {
        "Dependencies": dependencies or {"Start": "Transcode_1,Snapshot_1", "Transcode_1": "Animation_1",
                                         "Snapshot_1": "End", "Animation_1": "End"},
        "Nodes": nodes or {
            "Start": {"Type": "Start", "Input": {
                "ObjectPrefix": "in/", "ExtFilter": {"State": "On", "Video": "true"},
                "NotifyConfig": {"Type": "Url", "Url": os.environ["MQ_RECEIVER"], "Event": "TaskFinish,WorkflowFinish",
                                 "ResultFormat": "XML"}}},
            "Transcode_1": {"Type": "Transcode", "Operation": {"TemplateId": template_id,
                                                                "Output": output("out/${RunId}/${InputName}-small.mp4")}},
            "Snapshot_1": {"Type": "Snapshot", "Operation": {"TemplateId": builtin_snapshot,
                                                              "Output": output("out/${RunId}/cover-${Number}.jpg")}},
            "Animation_1": {"Type": "Animation", "Operation": {"TemplateId": builtin_gif,
                                                                "Output": output("out/${RunId}/anim.gif")}},
        }}}}


created = listed(cos.ci_create_workflow(Bucket=BUCKET, Body=workflow_body("media-flow"))["MediaWorkflow"])[0]
workflow_id = created["WorkflowId"]
check(workflow_id.startswith("w") and created["State"] == "Active", "ci_create_workflow makes an Active workflow")
got = listed(cos.ci_get_workflow(Bucket=BUCKET, Ids=workflow_id)["MediaWorkflowList"])[0]
unknown = "w" + "0" * 32
both = cos.ci_get_workflow(Bucket=BUCKET, Ids=workflow_id + "," + unknown)
check(listed(both.get("NonExistIDs")) == [unknown] and len(listed(both["MediaWorkflowList"])) == 1,
      "ci_get_workflow names an unknown id in NonExistIDs, one element per id as the Go SDK reads them: %s" % both.get("NonExistIDs"))
check(got["Name"] == "media-flow" and "Transcode_1" in got["Topology"]["Nodes"], "ci_get_workflow shows it with its topology")

with open(os.environ["MQ_VIDEO"], "rb") as video:
    clip = video.read()
cos.put_object(Bucket=BUCKET, Body=clip, Key="in/clip.mp4", ContentType="video/mp4", Metadata={"x-cos-meta-camera": "A7"})
first = runs(workflow_id)
check(len(first) == 1 and first[0]["Object"] == "in/clip.mp4", "put_object under the prefix started one run")
run_id = first[0]["RunId"]
check(run_id.startswith("i") and len(run_id) == 33, "the RunId is i + 32 hex digits")
print("run:", run_id)
execution = ended(run_id)
tasks = listed(execution.get("Tasks"))
check(execution["State"] == "Success", "the run succeeds (%s)" % json.dumps(tasks))
check(sorted(t["Name"] for t in tasks) == ["Animation_1", "Snapshot_1", "Transcode_1"] and all(t["State"] == "Success" for t in tasks),
      "its three tasks succeeded")
check(all(t["JobId"].startswith("j") for t in tasks), "each task names its job")
listed_run = listed(cos.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId=workflow_id, States="Success")["WorkflowExecutionList"])[0]
check(listed_run["RunId"] == run_id, "ci_list_workflowexecution shows the run as Success")
check(listed_run["CreateTime"] and listed_run["CreationTime"] == listed_run["CreateTime"],
      "a listed run's time is CreateTime (CI's documentation) and CreationTime (the Go SDK's struct)")
workflow_jobs = listed(ci_get("/jobs", tag="Animation", workflowId=workflow_id, size="100").get("JobsDetail"))
check([j["JobId"] for j in workflow_jobs] == [t["JobId"] for t in tasks if t["Name"] == "Animation_1"],
      "GET /jobs?workflowId= lists the workflow's jobs of that tag")
check(not listed(ci_get("/jobs", tag="Animation", workflowId="w" + "0" * 32).get("JobsDetail")),
      "GET /jobs?workflowId= of another workflow lists none of them")
snapshot_job = [t["JobId"] for t in tasks if t["Name"] == "Snapshot_1"][0]
by_job = listed(ci_get("/workflowexecution", workflowId=workflow_id, jobId=snapshot_job).get("WorkflowExecutionList"))
check([r["RunId"] for r in by_job] == [run_id], "GET /workflowexecution?jobId= finds the run of a task's job")

small = [s for s in probe("out/%s/clip-small.mp4" % run_id)["streams"] if s["codec_type"] == "video"][0]
check((small["width"], small["height"]) == (320, 240), "ffprobe: the transcode has the custom template's size")
cover = probe("out/%s/cover-0.jpg" % run_id)["streams"][0]
check(cover["codec_name"] == "mjpeg", "ffprobe: the snapshot is a JPEG")
gif = probe("out/%s/anim.gif" % run_id)["streams"][0]
check(gif["codec_name"] == "gif" and gif["width"] == 320, "ffprobe: the animation is a GIF")
animation_job = [t for t in tasks if t["Name"] == "Animation_1"][0]["JobId"]
animation = listed(cos.ci_get_media_jobs(Bucket=BUCKET, JobIDs=animation_job)["JobsDetail"])[0]
check(animation["Input"]["Object"] == "out/%s/clip-small.mp4" % run_id, "the animation worked on the transcode's output")
check(animation["Workflow"]["RunId"] == run_id and animation["Workflow"]["Name"] == "Animation_1",
      "the task's job shows its Workflow block beside its Operation")
headers = {h["Key"].lower(): h["Value"] for h in listed(animation["Input"].get("CosHeaders"))}
check(headers == {"content-type": "video/mp4", "x-cos-meta-camera": "A7", "eventname": "cos:ObjectCreated:Put"},
      "the task's job shows the upload's headers and event (%s)" % headers)

again = cos.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=workflow_id, Key="in/clip.mp4")
second = again["InstanceId"]
check(second != run_id and second.startswith("i"), "ci_trigger_workflow starts another run with a new RunId")
print("run:", second)
check(ended(second)["State"] == "Success", "the triggered run succeeds")

cos.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=workflow_id, UpdateState="paused")
cos.put_object(Bucket=BUCKET, Body=clip, Key="in/while-paused.mp4")
check(not runs(workflow_id, Name="in/while-paused.mp4"), "a paused workflow does not start on upload")
cos.put_object(Bucket=BUCKET, Body=b"not a picture", Key="in/notes.txt")
cos.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=workflow_id, UpdateState="active")
cos.put_object(Bucket=BUCKET, Body=b"text", Key="in/readme.txt")
check(not runs(workflow_id, Name="in/readme.txt"), "ExtFilter (Video) lets no text file in")
cos.put_object(Bucket=BUCKET, Body=b"text", Key="elsewhere/x.mp4")
check(not runs(workflow_id, Name="elsewhere/x.mp4"), "an object outside the prefix starts nothing")

cos.put_object(Bucket=BUCKET, Body=os.urandom(4096), Key="in/corrupt.mp4")
broken = runs(workflow_id, Name="in/corrupt.mp4")
check(len(broken) == 1, "a corrupt upload starts a run too")
failed = ended(broken[0]["RunId"])
failed_tasks = [t for t in listed(failed.get("Tasks")) if t["State"] == "Failed"]
check(failed["State"] == "Failed" and failed_tasks and failed_tasks[0]["Name"] in ("Transcode_1", "Snapshot_1"),
      "a failing node fails the run and is named (%s)" % json.dumps(listed(failed.get("Tasks"))))
animation = [t for t in listed(failed.get("Tasks")) if t["Name"] == "Animation_1"]
check(len(animation) == 1 and animation[0]["State"] == "Waiting" and not animation[0].get("JobId"),
      "the node after the failed one never started (%s)" % json.dumps(animation))
print("failed run:", broken[0]["RunId"])

cyclic = workflow_body("cyclic", dependencies={"Start": "Transcode_1", "Transcode_1": "Snapshot_1", "Snapshot_1": "Transcode_1,End"})
del cyclic["MediaWorkflow"]["Topology"]["Nodes"]["Animation_1"]
refused(lambda: cos.ci_create_workflow(Bucket=BUCKET, Body=cyclic), "InvalidArgument", "a cyclic topology is refused", mentions="cycle")
unknown = workflow_body("unknown", dependencies={"Start": "Teleport_1", "Teleport_1": "End"},
                        nodes={"Start": {"Type": "Start", "Input": {"ObjectPrefix": "in/"}},
                               "Teleport_1": {"Type": "Teleport", "Operation": {"Output": output("x")}}})
refused(lambda: cos.ci_create_workflow(Bucket=BUCKET, Body=unknown), "InvalidArgument", "an unknown node type is refused",
        mentions="Teleport_1")
missing = workflow_body("missing", dependencies={"Start": "Transcode_1", "Transcode_1": "End"},
                        nodes={"Start": {"Type": "Start", "Input": {"ObjectPrefix": "in/"}},
                               "Transcode_1": {"Type": "Transcode", "Operation": {"TemplateId": "t0000000000000000000000000000000000",
                                                                                   "Output": output("x.mp4")}}})
refused(lambda: cos.ci_create_workflow(Bucket=BUCKET, Body=missing), "InvalidArgument", "a missing template is refused",
        mentions="Topology.Nodes.Transcode_1")
nowhere = workflow_body("nowhere", dependencies={"Start": "Snapshot_1", "Snapshot_1": "End"},
                        nodes={"Start": {"Type": "Start", "Input": {"ObjectPrefix": "in/", "NotifyConfig": {"Type": "Url"}}},
                               "Snapshot_1": {"Type": "Snapshot", "Operation": {"TemplateId": builtin_snapshot,
                                                                                "Output": output("x-${Number}.jpg")}}})
refused(lambda: cos.ci_create_workflow(Bucket=BUCKET, Body=nowhere), "InvalidArgument",
        "a Start node announcing to a Url it does not give is refused", mentions="Topology.Nodes.Start.Input.NotifyConfig.Url")
refused(lambda: cos.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=workflow_id, Key="in/../../etc/passwd"), "InvalidArgument",
        "a key with '..' is refused")
refused(lambda: cos.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=workflow_id, Key="in/never-uploaded.mp4"), "NoSuchKey",
        "a trigger on an object that does not exist is refused")
refused(lambda: cos.ci_delete_template(Bucket=BUCKET, TemplateId=template_id), "ResourceInUse",
        "a template a workflow uses cannot be deleted", mentions=workflow_id)

# A template change that a workflow using it could not run is refused: its runs would fail there.
one_shot = {"Tag": "Snapshot", "Name": "one-shot", "Snapshot": {"Mode": "Interval", "Start": "0", "Count": "1"}}
shot_id = listed(cos.ci_create_template(Bucket=BUCKET, Template=one_shot)["Template"])[0]["TemplateId"]
covered = workflow_body("cover", dependencies={"Start": "Snapshot_1", "Snapshot_1": "End"},
                        nodes={"Start": {"Type": "Start", "Input": {"ObjectPrefix": "covers/"}},
                               "Snapshot_1": {"Type": "Snapshot", "Operation": {"TemplateId": shot_id,
                                                                                "Output": output("out/${RunId}/cover.jpg")}}})
cover_id = listed(cos.ci_create_workflow(Bucket=BUCKET, Body=covered)["MediaWorkflow"])[0]["WorkflowId"]
one_shot["Snapshot"]["Count"] = "5"
refused(lambda: cos.ci_update_template(Bucket=BUCKET, TemplateId=shot_id, Template=one_shot), "InvalidArgument",
        "a template change a workflow using it could not run is refused, naming the workflow", mentions=cover_id)
kept = listed(cos.ci_get_template(Bucket=BUCKET, Ids=shot_id)["TemplateList"])[0]
check(kept["Snapshot"]["Count"] == "1", "the refused change left the template as it was")
one_shot["Snapshot"]["Start"] = "1"
one_shot["Snapshot"]["Count"] = "1"
check(listed(cos.ci_update_template(Bucket=BUCKET, TemplateId=shot_id, Template=one_shot)["Template"])[0]["Snapshot"]["Start"] == "1",
      "a change the workflow can run is saved")
cos.ci_delete_workflow(Bucket=BUCKET, WorkflowId=cover_id)
cos.ci_delete_template(Bucket=BUCKET, TemplateId=shot_id)

cos.ci_delete_workflow(Bucket=BUCKET, WorkflowId=workflow_id)
check(not listed(cos.ci_get_workflow(Bucket=BUCKET).get("MediaWorkflowList")), "ci_delete_workflow removes it")
cos.ci_delete_template(Bucket=BUCKET, TemplateId=template_id)
check(not [t for t in listed(cos.ci_get_template(Bucket=BUCKET, Ids=template_id).get("TemplateList")) if t["TemplateId"] == template_id],
      "the template can go once no workflow uses it")

print("workflows: ok")
