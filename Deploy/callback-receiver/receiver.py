"""Example MediaQueue callback receiver: logs every TaskFinish/WorkflowFinish event published to
the default callback rule's topic exchange.

It binds its own durable queue (so events published while it restarts wait for it) to the exchange
with a routing key pattern, and prints one line per event followed by the body. Settings, from the
environment:

    AMQP_URL     amqp://guest:guest@rabbitmq:5672/
    EXCHANGE     job-events          (MEDIAQUEUE_EVENTS_EXCHANGE of the service)
    BINDING_KEY  job.#               (job.<QueueId>.<Tag>.<State>; e.g. job.*.*.Failed)
    QUEUE        callback-receiver
"""

import os
import signal
import sys
import time

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/")
exchange = os.environ.get("EXCHANGE", "job-events")
binding_key = os.environ.get("BINDING_KEY", "job.#")
queue = os.environ.get("QUEUE", "callback-receiver")


def log(line):
    print(time.strftime("%Y-%m-%dT%H:%M:%S%z"), line, flush=True)


def on_event(channel, method, properties, body):
    headers = properties.headers or {}
    log(
        "callback: routing_key=%s event=%s job=%s message_id=%s content_type=%s"
        % (
            method.routing_key,
            headers.get("x-ci-event", "-"),
            headers.get("x-ci-job-id", "-"),
            properties.message_id,
            properties.content_type,
        )
    )
    print(body.decode("utf-8", "replace"), flush=True)
    channel.basic_ack(method.delivery_tag)


def main():
    # PID 1 in a container: stop promptly on `docker compose stop`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
            channel = connection.channel()
            channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, exchange, binding_key)
            channel.basic_qos(prefetch_count=10)
            channel.basic_consume(queue, on_event)
            log("listening: exchange=%s binding_key=%s queue=%s" % (exchange, binding_key, queue))
            channel.start_consuming()
        except pika.exceptions.AMQPError as error:
            log("broker not reachable or connection lost (%r); retrying in 2 s" % (error,))
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
