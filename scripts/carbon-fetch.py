"""Print the points carbon-cache holds for one metric: whisper file and cache, "ts value" a line.

Usage: carbon-fetch.py WHISPER_DIR CACHE_QUERY_PORT NAME
       carbon-fetch.py WHISPER_DIR CACHE_QUERY_PORT --count NAME...   ("name count" a line)
       carbon-fetch.py WHISPER_DIR CACHE_QUERY_PORT --disk NAME       (whisper file only)

The cache holds points not yet written to disk; the writer moves them to the whisper file
within about a second, so a reader must look at both.
"""
import os
import pickle
import socket
import struct
import sys
import time

import whisper
from carbon.util import TaggedSeries


def cache_points(port, name):
    request = pickle.dumps({"type": "cache-query", "metric": name}, protocol=2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(struct.pack("!L", len(request)) + request)
        size = struct.unpack("!L", read_exactly(conn, 4))[0]
        reply = pickle.loads(read_exactly(conn, size))
    return reply.get("datapoints", [])


def read_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError("cache query connection closed")
        data += chunk
    return data


def disk_points(whisper_dir, name):
    path = os.path.join(whisper_dir, TaggedSeries.encode(name, os.sep, hash_only=True) + ".wsp")
    if not os.path.exists(path):
        return []
    # Carbon's writer creates a file, then writes its header, then (sparse files) its
    # archives: a read can fall in between, and whisper then fails to unpack what is not
    # there yet. (The points being written are then in neither place; the caller polls.)
    deadline = time.monotonic() + 5
    while True:
        try:
            (start, _end, step), values = whisper.fetch(path, int(time.time()) - 86400 + 1)
            break
        except (whisper.CorruptWhisperFile, struct.error):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    return [(start + i * step, v) for i, v in enumerate(values) if v is not None]


def points_of(whisper_dir, port, name):
    name = TaggedSeries.parse(name).path if ";" in name else name
    points = dict(disk_points(whisper_dir, name))
    points.update((int(ts), value) for ts, value in cache_points(port, name))
    return points


def main():
    whisper_dir, port = sys.argv[1], int(sys.argv[2])
    if sys.argv[3] == "--disk":
        name = sys.argv[4]
        name = TaggedSeries.parse(name).path if ";" in name else name
        for ts, value in sorted(disk_points(whisper_dir, name)):
            print(ts, repr(value))
        return
    if sys.argv[3] == "--count":
        for name in sys.argv[4:]:
            print(name, len(points_of(whisper_dir, port, name)))
        return
    points = points_of(whisper_dir, port, sys.argv[3])
    for ts in sorted(points):
        print(ts, repr(points[ts]))


if __name__ == "__main__":
    main()
