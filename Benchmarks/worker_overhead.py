"""Alternates a Transcode job through MediaQueue with the same ffmpeg command run directly.

Run by Benchmarks/worker-overhead.sh, which starts the service with a recording ffmpeg wrapper.
A warm-up job records the worker's ffmpeg arguments; each round then runs that command directly
(its output path moved to a scratch folder) and one more job through MediaQueue, timed from the
publish to the arrival of its TaskFinish event. Prints the medians and their ratio.
"""
import argparse
import os
import statistics
import subprocess
import time
import uuid

import pika

REQUEST = """<Request><Tag>Transcode</Tag><Input><Object>in/a.mp4</Object></Input><Operation>
<Transcode><Container><Format>mp4</Format></Container>
<Video><Codec>H.264</Codec><Width>640</Width><Crf>23</Crf><Preset>veryfast</Preset></Video>
<Audio><Codec>aac</Codec><Bitrate>128</Bitrate></Audio></Transcode>
<Output><Object>{output}</Object></Output></Operation></Request>"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--intake", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--argv-dir", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--scratch", required=True)
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare(args.exchange, "topic", durable=True)
    events = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(events, args.exchange, "job.#")

    def through_mediaqueue(output):
        started = time.perf_counter()
        channel.basic_publish("", args.intake, REQUEST.format(output=output),
                              pika.BasicProperties(delivery_mode=2, message_id=str(uuid.uuid4())))
        for method, _, body in channel.consume(events, inactivity_timeout=600):
            if method is None:
                raise SystemExit("no TaskFinish event within 600 s")
            channel.basic_ack(method.delivery_tag)
            if b"<State>Success</State>" in body:
                elapsed = time.perf_counter() - started
                channel.cancel()
                return elapsed
            raise SystemExit("the job did not succeed: " + body.decode(errors="replace")[:500])

    # Warm-up job: page cache, ffmpeg's libraries, and the recorded command.
    through_mediaqueue("out/warmup.mp4")
    transcodes = []
    for name in os.listdir(args.argv_dir):
        with open(os.path.join(args.argv_dir, name), "rb") as file:
            argv = [part.decode() for part in file.read().split(b"\0")[:-1]]
        if "-progress" in argv:
            transcodes.append(argv)
    if len(transcodes) != 1:
        raise SystemExit(f"expected one recorded ffmpeg run, found {len(transcodes)}")
    command = transcodes[0]
    print("# the worker's ffmpeg command: ffmpeg " + " ".join(command), flush=True)

    direct, queued = [], []
    for round_ in range(args.rounds):
        argv = command[:-1] + [os.path.join(args.scratch, f"direct-{round_}.mp4")]
        started = time.perf_counter()
        subprocess.run(["/usr/bin/ffmpeg"] + argv, check=True, stdout=subprocess.DEVNULL)
        direct.append(time.perf_counter() - started)
        queued.append(through_mediaqueue(f"out/mq-{round_}.mp4"))
        print(f"round {round_ + 1}: direct {direct[-1]:.3f} s, through MediaQueue {queued[-1]:.3f} s", flush=True)
    connection.close()

    direct_median, queued_median = statistics.median(direct), statistics.median(queued)
    print(f"direct ffmpeg median:        {direct_median:.3f} s")
    print(f"through MediaQueue median:   {queued_median:.3f} s "
          f"(+{(queued_median - direct_median) * 1000:.0f} ms, {(queued_median / direct_median - 1) * 100:.1f} % more)")
    print(f"rounds={args.rounds} direct_s={direct_median:.3f} mediaqueue_s={queued_median:.3f} "
          f"ratio_direct_over_mediaqueue={direct_median / queued_median:.3f}")


if __name__ == "__main__":
    main()
