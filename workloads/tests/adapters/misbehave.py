#!/usr/bin/env python3
"""An adapter that breaks the protocol in one way, chosen by its first argument, for
the adapter client's tests:

  garbage         answers every request with a line that is not JSON
  hang            never answers a request
  exit            exits (status 3) after reading the first request
  wrong-id        answers with the request's id + 1
  bad-type        answers with type "okay"
  refuse          refuses the handshake with an error
  bad-handshake   answers the handshake with something else
  hang-handshake  never answers the handshake
  exit-handshake  exits before answering the handshake
  spawn-child     starts a long sleep in the background, then hangs (process-group kill)
  no-newline      answers the first request correctly but without a newline, and exits
  too-long        answers with a line longer than the harness's 16 MiB limit
  chatty          writes 20 MB to stderr before answering the handshake, then hangs
  setsid-child    starts `setsid sleep 600` (leaving its process group) and reports its
                  pid on stderr, then answers every request ok

It writes its pid to stderr; `spawn-child` writes its child's pid to the file named
by ADAPTER_CHILD_PID_FILE.
"""
import json
import os
import subprocess
import sys
import time


def send(message):
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def main():
    mode = sys.argv[1]
    print(f"misbehaving adapter ({mode}) pid {os.getpid()}", file=sys.stderr, flush=True)
    sys.stdin.readline()
    if mode == "refuse":
        send(json.dumps({"type": "error", "error": "this adapter refuses to work"}))
        time.sleep(60)
        return
    if mode == "bad-handshake":
        send("hello there")
        time.sleep(60)
        return
    if mode == "hang-handshake":
        time.sleep(60)
        return
    if mode == "exit-handshake":
        sys.exit(4)
    if mode == "chatty":
        line = "x" * 99 + "\n"
        for _ in range(200_000):
            sys.stderr.write(line)
        print("chatty: done", file=sys.stderr, flush=True)
    if mode == "setsid-child":
        child = subprocess.Popen(["setsid", "sleep", "600"])
        print(f"setsid child pid {child.pid}", file=sys.stderr, flush=True)
    if mode == "spawn-child":
        child = subprocess.Popen(["sleep", "60"])
        pid_file = os.environ.get("ADAPTER_CHILD_PID_FILE")
        if pid_file:
            with open(pid_file, "w") as f:
                f.write(str(child.pid))
    send(json.dumps({"type": "init_ok"}))
    for line in sys.stdin:
        request = json.loads(line)
        if mode == "garbage":
            send("this is not json " + "x" * 300)
        elif mode == "setsid-child":
            send(json.dumps({"id": request["id"], "type": "ok", "value": request["value"]}))
        elif mode in ("hang", "spawn-child", "chatty"):
            time.sleep(60)
        elif mode == "exit":
            sys.exit(3)
        elif mode == "wrong-id":
            send(json.dumps({"id": request["id"] + 1, "type": "ok"}))
        elif mode == "no-newline":
            sys.stdout.write(json.dumps({"id": request["id"], "type": "ok"}))
            sys.stdout.flush()
            sys.exit(0)
        elif mode == "too-long":
            send(json.dumps({"id": request["id"], "type": "ok", "pad": "x" * (17 << 20)}))
        elif mode == "bad-type":
            send(json.dumps({"id": request["id"], "type": "okay"}))


if __name__ == "__main__":
    main()
