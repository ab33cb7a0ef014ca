"""Python graphyte 1.7.1, driven like the Rust clients in compare.rs: one report line.

Usage: compare_graphyte_py.py (tcp|sporadic) PORT COUNT
"""
import resource
import sys
import time

import graphyte


def report(**values):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    values["cpu_s"] = usage.ru_utime + usage.ru_stime
    values["rss_kb"] = usage.ru_maxrss
    print("REPORT " + " ".join("{}={}".format(k, v) for k, v in values.items()), flush=True)


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main():
    kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Interval mode with a queue large enough to keep every line (the default, interval*100,
    # drops most of a burst).
    sender = graphyte.Sender("127.0.0.1", port, prefix="bench", interval=1, queue_size=count + 1)
    if kind == "sporadic":
        times, empty = [], []
        for i in range(count):
            spin(0.0001)
            start = time.perf_counter_ns()
            sender.send("requests.ok", i)
            times.append(time.perf_counter_ns() - start)
            start = time.perf_counter_ns()
            empty.append(time.perf_counter_ns() - start)
        sender.stop()
        times.sort()
        empty.sort()
        report(sporadic_ns=times[count // 2] - empty[count // 2])
        return
    start_us = time.time() * 1e6
    start = time.perf_counter_ns()
    for i in range(count):
        sender.send("requests.ok", i)
    caller_ns = (time.perf_counter_ns() - start) / count
    sender.stop()
    report(start_us=start_us, caller_ns=caller_ns)


if __name__ == "__main__":
    main()
