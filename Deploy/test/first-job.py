"""The compose test's producer and subscriber (run on the host, against the published AMQP port):
the README's first job over AMQP, checked.

    first-job.py AMQP_URL REQUEST.xml [TIMEOUT_SECONDS]

Waits until MediaQueue consumes its intake queue, binds an exclusive queue to the default rule's
topic exchange (job-events, job.#), publishes the request to mediaqueue.jobs with reply_to, takes
the JobId from the CreateMediaJobs <Response>, then waits for that job's TaskFinish event and checks
its routing key and body. Prints `JobId` on stdout on success; exits 1 with the reason otherwise.
"""

import sys
import time
import uuid
import xml.etree.ElementTree as ET

import pika

url, request_file = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 600
deadline = time.monotonic() + timeout
intake, exchange = "mediaqueue.jobs", "job-events"


def fail(reason):
    print("first job: " + reason, file=sys.stderr)
    sys.exit(1)


def remaining():
    left = deadline - time.monotonic()
    if left <= 0:
        fail("timed out after %.0f s" % timeout)
    return left


connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()

# 1. MediaQueue declares its intake queue and consumes it: wait for a consumer, so that the
#    request is not published to a queue that does not exist yet.
while True:
    try:
        if channel.queue_declare(intake, passive=True).method.consumer_count > 0:
            break
    except pika.exceptions.ChannelClosedByBroker:
        channel = connection.channel()
    remaining()
    connection.sleep(1)

# 2. The subscriber: as in the README, an exclusive queue bound to job-events with job.#.
channel.exchange_declare(exchange, "topic", durable=True)
events = channel.queue_declare("", exclusive=True).method.queue
channel.queue_bind(events, exchange, "job.#")
replies = channel.queue_declare("", exclusive=True).method.queue

# 3. Submit.
body = open(request_file, "rb").read()
correlation = str(uuid.uuid4())
channel.basic_publish(
    "", intake, body,
    pika.BasicProperties(
        content_type="application/xml", delivery_mode=2, message_id=correlation,
        reply_to=replies, correlation_id=correlation,
    ),
)

job_id = None
for method, properties, reply in channel.consume(replies, auto_ack=True, inactivity_timeout=1):
    if method is None:
        remaining()
        continue
    if properties.correlation_id != correlation:
        continue
    document = ET.fromstring(reply)
    job_id = document.findtext("JobsDetail/JobId")
    if not job_id:
        fail("the submission was refused: " + reply.decode("utf-8", "replace"))
    break
channel.cancel()
print("first job: accepted as %s" % job_id, file=sys.stderr)

# 4. Its TaskFinish event.
for method, properties, event in channel.consume(events, auto_ack=True, inactivity_timeout=1):
    if method is None:
        remaining()
        continue
    document = ET.fromstring(event)
    if document.findtext("JobsDetail/JobId") != job_id:
        continue
    state = document.findtext("JobsDetail/State")
    print("first job: %s %s" % (method.routing_key, event.decode("utf-8", "replace")), file=sys.stderr)
    if document.findtext("EventName") != "TaskFinish":
        fail("expected EventName TaskFinish: " + event.decode("utf-8", "replace"))
    if state != "Success" or not method.routing_key.endswith(".Snapshot.Success"):
        fail("the job did not succeed (routing key %s, State %s, Code %s, Message %s)" % (
            method.routing_key, state, document.findtext("JobsDetail/Code"), document.findtext("JobsDetail/Message")))
    break
connection.close()
print(job_id)
