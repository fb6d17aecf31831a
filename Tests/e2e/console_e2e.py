"""Drives MediaQueue's web console in real headless Chromium (Selenium) against a running serve.

Run by MediaQueueIntegrationTests.ConsoleBrowserTests with MQ_PORT, MQ_BUCKET, MQ_SECRET_ID,
MQ_SECRET_KEY and MQ_SCREENSHOTS (a folder). Jobs are submitted with Tencent's Python SDK, as a
user would; callbacks go to an HTTP receiver this script runs on loopback. Every check raises on
failure; the last line printed is "console: ok". Waits are for what the page shows, bounded.
"""
import http.server
import os
import sys
import threading
import urllib.request

from qcloud_cos import CosConfig, CosS3Client
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PORT = int(os.environ["MQ_PORT"])
BUCKET = os.environ["MQ_BUCKET"]
BASE = "http://127.0.0.1:%d" % PORT
SHOTS = os.environ["MQ_SCREENSHOTS"]
WAIT = 120  # seconds: the bound of every wait, far above what a loaded machine needs

os.makedirs(SHOTS, exist_ok=True)


def check(condition, what):
    if not condition:
        print("FAILED:", what, file=sys.stderr)
        shot("failure")
        sys.exit(1)
    print("ok:", what)


# ---- a callback receiver: records every POST; answers 410 on /flaky until it is told to heal.
received = []
healed = threading.Event()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received.append({"path": self.path, "id": self.headers.get("webhook-id"), "event": self.headers.get("x-ci-event"), "body": body})
        status = 410 if self.path == "/flaky" and not healed.is_set() else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
RECEIVER = "http://127.0.0.1:%d" % receiver.server_address[1]


def received_on(path):
    return [r for r in list(received) if r["path"] == path]


# ---- the SDK, to submit jobs as a client would.
cos = CosS3Client(CosConfig(Region="ap-guangzhou", IP="127.0.0.1", Port=PORT, Scheme="http",
                            SecretId=os.environ["MQ_SECRET_ID"], SecretKey=os.environ["MQ_SECRET_KEY"]))


def submit(tag, obj, user_data, operation=None):
    op = {"UserData": user_data}
    op.update(operation or {})
    response = cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={"Tag": tag, "Input": {"Object": obj}, "Operation": op})
    detail = response["JobsDetail"]
    detail = detail[0] if isinstance(detail, list) else detail
    return detail["JobId"]


# ---- the browser.
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
    options.add_argument(flag)
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
counter = [0]


def shot(name):
    counter[0] += 1
    try:
        browser.save_screenshot(os.path.join(SHOTS, "%02d-%s.png" % (counter[0], name)))
    except Exception:  # the browser may be gone when a check fails late
        pass


def wait(what, condition, timeout=WAIT):
    try:
        # A page being replaced (after a click) has elements that vanish under the check; Chromium
        # then also says "Node with given id does not belong to the document" (a WebDriverException).
        return WebDriverWait(browser, timeout, poll_frequency=0.2, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException, WebDriverException)).until(
            lambda _: condition())
    except TimeoutException:
        check(False, what)


def open_page(path):
    browser.get(BASE + path)


def text(element_id):
    return browser.find_element(By.ID, element_id).text


def queue_row():
    return browser.find_element(By.CSS_SELECTOR, "#queues tbody tr")


def click_button(container, label):
    buttons = [b for b in container.find_elements(By.TAG_NAME, "button") if b.text == label]
    check(len(buttons) == 1, "one button '%s'" % label)
    buttons[0].click()


def set_queue_state(button):
    open_page("/console/b/%s/queues" % BUCKET)
    click_button(queue_row(), button)
    expected = "Paused" if button == "Pause" else "Active"
    wait("queue-1 shows %s" % expected, lambda: queue_row().find_element(By.CSS_SELECTOR, ".state").text == expected)


def job_state_on_detail(job_id):
    open_page("/console/b/%s/jobs/%s" % (BUCKET, job_id))
    return text("job-state")


def wait_for_job_state(job_id, state):
    open_page("/console/b/%s/jobs/%s" % (BUCKET, job_id))
    # The page follows a live job by itself (and reloads once it ends).
    wait("job %s reaches %s" % (job_id, state), lambda: text("job-state") == state)


def save_rule(url, events=("TaskFinish",)):
    open_page("/console/b/%s/queues" % BUCKET)
    queue_row().find_element(By.LINK_TEXT, "Configure Callback Rule").click()
    wait("the rule form", lambda: browser.find_elements(By.ID, "rule"))
    browser.find_element(By.ID, "State-On").click()
    browser.find_element(By.ID, "Type-Url").click()
    field = browser.find_element(By.ID, "Url")
    field.clear()
    field.send_keys(url)
    for event in ("TaskFinish", "WorkflowFinish", "TaskProgress"):
        box = browser.find_element(By.ID, "Event-" + event)
        if box.is_selected() != (event in events):
            box.click()
    browser.find_element(By.ID, "save-rule").click()


try:
    # 1. Nothing without signing in: pages lead to the sign-in form, and a forged POST is refused.
    open_page("/console/b/%s/queues" % BUCKET)
    check(browser.current_url.endswith("/console/login"), "a signed-out visitor is sent to the sign-in page")
    shot("login")
    browser.find_element(By.ID, "secretId").send_keys("AKIDwrong")
    browser.find_element(By.ID, "secretKey").send_keys("nope")
    browser.find_element(By.ID, "sign-in").click()
    refusal = wait("the refusal", lambda: browser.find_elements(By.ID, "page-error"))[0]
    check("Wrong SecretId" in refusal.text, "a wrong key is refused")

    # 2. Sign in with the API's key pair.
    browser.find_element(By.ID, "secretId").clear()
    browser.find_element(By.ID, "secretId").send_keys(os.environ["MQ_SECRET_ID"])
    browser.find_element(By.ID, "secretKey").send_keys(os.environ["MQ_SECRET_KEY"])
    browser.find_element(By.ID, "sign-in").click()
    wait("the overview after signing in", lambda: browser.find_elements(By.ID, "states"))
    cookie = browser.get_cookie("mq_console")
    check(cookie is not None and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", "the session cookie is HttpOnly and SameSite")
    shot("overview")

    # 3. Pause queue-1: a new job waits as Pause; Enable: it runs and succeeds.
    set_queue_state("Pause")
    shot("queues-paused")
    waiting = submit("MediaInfo", "input/a.mp4", "waits while paused")
    open_page("/console/b/%s/jobs" % BUCKET)
    Select(browser.find_element(By.ID, "filter-state")).select_by_value("Pause")
    browser.find_element(By.ID, "apply-filters").click()
    wait("the job listed as Pause", lambda: browser.find_elements(By.CSS_SELECTOR, "tr[data-job-id='%s']" % waiting))
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-job-id='%s']" % waiting)
    check(row.find_element(By.CSS_SELECTOR, ".state").text == "Pause", "the new job waits as Pause")
    shot("jobs-paused")
    set_queue_state("Enable")
    wait_for_job_state(waiting, "Success")
    check(text("progress-text") == "100%", "the finished job shows 100%")

    # 4. Cancel a waiting job from the list.
    set_queue_state("Pause")
    doomed = submit("MediaInfo", "input/a.mp4", "cancelled while waiting")
    open_page("/console/b/%s/jobs?state=Pause" % BUCKET)
    row = wait("the waiting job listed", lambda: browser.find_elements(By.CSS_SELECTOR, "tr[data-job-id='%s']" % doomed))[0]
    click_button(row, "Cancel")
    wait("the cancel notice", lambda: browser.find_elements(By.ID, "notice"))
    check(job_state_on_detail(doomed) == "Cancel", "the cancelled job shows Cancel")
    set_queue_state("Enable")

    # 5. A private address in the rule is refused next to the field.
    save_rule("http://10.1.2.3/cb")
    wait("the Url error", lambda: browser.find_elements(By.ID, "error-Url"))
    check("NotifyConfig.Url" in text("error-Url"), "a private address is refused next to Url: " + text("error-Url"))
    shot("rule-error")

    # 6. The rule to a receiver's URL: a finished job's callback arrives there.
    save_rule(RECEIVER + "/hook")
    wait("the saved notice", lambda: browser.find_elements(By.ID, "notice"))
    shot("rule-saved")
    announced = submit("MediaInfo", "input/a.mp4", "announced by url")
    wait("the callback at the receiver", lambda: any(announced.encode() in r["body"] for r in received_on("/hook")))
    wait_for_job_state(announced, "Success")
    wait("the delivery listed as delivered", lambda: (browser.refresh() or True) and "delivered" in text("deliveries"))
    shot("job-delivered")

    # 7. A 20-second transcode: its progress bar moves without a reload and reaches 100.
    long_job = submit("Transcode", "input/long.mp4", "watched", {
        "Transcode": {"Container": {"Format": "mp4"}, "Video": {"Codec": "H.265", "Preset": "medium"}},
        "Output": {"Object": "out/watched.mp4"}})
    open_page("/console/b/%s/jobs/%s" % (BUCKET, long_job))
    marker = browser.execute_script("window.notReloaded = true; return window.notReloaded;")
    seen = set()

    def progress_seen():
        value = int(browser.find_element(By.ID, "progress-bar").get_attribute("value") or "0")
        if browser.execute_script("return window.notReloaded === true;"):
            seen.add(value)
        return text("job-state") == "Running" and value > 0 and len(seen) >= 2

    wait("the bar moving while the transcode runs", progress_seen)
    shot("job-progress")
    check(marker and len(seen) >= 2, "the progress bar moved without a reload: %s" % sorted(seen))
    wait("the transcode to end", lambda: text("job-state") == "Success", timeout=600)
    check(browser.find_element(By.ID, "progress-bar").get_attribute("value") == "100", "the bar reaches 100")
    outputs = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#outputs a")]
    check(outputs == ["out/watched.mp4"], "the output is listed for download: %s" % outputs)
    # The link downloads the file, with the session's cookie (an MP4 starts with an ftyp box).
    link = browser.find_element(By.CSS_SELECTOR, "#outputs a").get_attribute("href")
    request = urllib.request.Request(link, headers={"Cookie": "mq_console=" + browser.get_cookie("mq_console")["value"]})
    with urllib.request.urlopen(request) as response:
        data = response.read()
        check(response.headers.get("Content-Disposition") == 'attachment; filename="watched.mp4"', "downloaded as watched.mp4")
    check(len(data) > 10000 and data[4:8] == b"ftyp", "the download is the transcoded MP4 (%d bytes)" % len(data))
    shot("job-done")

    # 8. A dead callback, redriven from the console, is delivered with the same webhook-id.
    save_rule(RECEIVER + "/flaky")
    wait("the saved notice", lambda: browser.find_elements(By.ID, "notice"))
    flaky = submit("MediaInfo", "input/a.mp4", "dies then lives")
    wait("the refused attempt", lambda: received_on("/flaky"))
    open_page("/console/b/%s/callbacks/dead" % BUCKET)
    wait("the dead delivery listed", lambda: (browser.refresh() or True) and browser.find_elements(By.XPATH, "//td/a[text()='%s']" % flaky))
    shot("dead")
    healed.set()
    row = browser.find_element(By.XPATH, "//tr[td/a[text()='%s']]" % flaky)
    click_button(row, "Redrive")
    wait("the redrive notice", lambda: "1 delivery is due again." in text("notice"))
    wait("the redriven delivery to arrive", lambda: len(received_on("/flaky")) == 2)
    ids = {r["id"] for r in received_on("/flaky")}
    check(len(ids) == 1, "the redriven delivery keeps its webhook-id")
    open_page("/console/b/%s/jobs/%s" % (BUCKET, flaky))
    wait("the delivery shown delivered", lambda: (browser.refresh() or True) and "delivered" in text("deliveries"))

    # 9. Limits can be edited; a bad value is refused next to its field.
    open_page("/console/b/%s/queues" % BUCKET)
    queue_row().find_element(By.LINK_TEXT, "Configure Callback Rule").click()
    field = wait("the limits form", lambda: browser.find_elements(By.ID, "MaxConcurrent"))[0]
    field.clear()
    field.send_keys("0")
    browser.find_element(By.ID, "save-settings").click()
    wait("the MaxConcurrent error", lambda: browser.find_elements(By.ID, "error-MaxConcurrent"))
    field = browser.find_element(By.ID, "MaxConcurrent")
    field.clear()
    field.send_keys("3")
    browser.find_element(By.ID, "save-settings").click()
    wait("the limits saved", lambda: browser.find_elements(By.ID, "notice"))
    open_page("/console/b/%s/queues" % BUCKET)
    check(queue_row().find_elements(By.TAG_NAME, "td")[3].text == "3", "MaxConcurrent 3 is listed")
    shot("queues")
    open_page("/console/b/%s/jobs" % BUCKET)
    shot("jobs")

    # 10. A workflow's run, from an upload, on the Workflows page and its run page.
    flow = cos.ci_create_workflow(Bucket=BUCKET, Body={"MediaWorkflow": {"Name": "console-flow", "State": "Active", "Topology": {
        "Dependencies": {"Start": "MediaInfo_1", "MediaInfo_1": "End"},
        "Nodes": {"Start": {"Type": "Start", "Input": {"ObjectPrefix": "wf/"}}, "MediaInfo_1": {"Type": "MediaInfo", "Operation": {}}}}}})
    video = cos.get_object(Bucket=BUCKET, Key="input/a.mp4")["Body"].get_raw_stream().read()
    cos.put_object(Bucket=BUCKET, Body=video, Key="wf/clip.mp4")
    browser.find_element(By.LINK_TEXT, "Workflows").click()
    section = wait("the workflow on the Workflows page", lambda: browser.find_elements(By.CSS_SELECTOR, ".workflow"))[0]
    check("console-flow" in section.text and "wf/" in section.text, "the workflow is listed with its prefix")
    row = section.find_element(By.CSS_SELECTOR, "tr[data-run-id]")
    run_id = row.get_attribute("data-run-id")
    row.find_element(By.LINK_TEXT, run_id).click()
    wait("the run's task to succeed", lambda: (open_page("/console/b/%s/runs/%s" % (BUCKET, run_id)) or True)
         and text("run-state") == "Success")
    task = browser.find_element(By.CSS_SELECTOR, "#tasks tr[data-node='MediaInfo_1']")
    check("Success" in task.text and "wf/clip.mp4" in browser.find_element(By.ID, "run").text, "the run page shows its task and object")
    task.find_element(By.CSS_SELECTOR, "a").click()
    wait("the task's job page", lambda: browser.find_elements(By.ID, "job"))
    check(text("job-state") == "Success", "the task links to its job")
    shot("workflow-run")

    # 11. Signing out ends the session.
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait("the sign-in page after signing out", lambda: browser.current_url.endswith("/console/login"))
    open_page("/console/b/%s/queues" % BUCKET)
    check(browser.current_url.endswith("/console/login"), "signed out")
except Exception:
    # What the browser showed when the script broke, for the log and the screenshots.
    shot("failure")
    print("FAILED at", browser.current_url, "showing:", browser.find_element(By.TAG_NAME, "body").text[:2000], file=sys.stderr)
    raise
finally:
    browser.quit()
    receiver.shutdown()

print("console: ok")
