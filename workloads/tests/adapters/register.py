#!/usr/bin/env python3
"""A well-behaved in-memory register adapter for the adapter client's tests.

Speaks protocol 1: answers `init` with `init_ok`, then serves read / write / cas on
one in-memory register per key. Some written values choose an outcome, so that a test
can reach every path:
  -1  -> {"type":"info","error":"pretend-timeout"}
  -2  -> {"type":"fail","error":"pretend-refused"}
  -N for N in 13, 20, 99 -> Maelstrom-style {"type":"error","code":N} (20 with a text)
Every answer carries an extra field `served_by` (the node name from the handshake).
"""
import json
import sys


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    init = json.loads(sys.stdin.readline())
    if init.get("type") != "init" or init.get("protocol") != 1:
        send({"type": "error", "error": "expected an init message for protocol 1"})
        return
    node = init["node"]
    print(f"register adapter for {node} ready", file=sys.stderr, flush=True)
    send({"type": "init_ok"})
    registers = {}
    for line in sys.stdin:
        request = json.loads(line)
        rid, f, key, value = request["id"], request["f"], request.get("key"), request.get("value")
        key = "register" if key is None else str(key)
        reply = {"id": rid, "served_by": node}
        if f == "read":
            reply.update(type="ok", value=registers.get(key))
        elif f == "write" and value == -1:
            reply.update(type="info", error="pretend-timeout")
        elif f == "write" and value == -2:
            reply.update(type="fail", error="pretend-refused")
        elif f == "write" and value == -20:
            reply.update(type="error", code=20, text="no such key here")
        elif f == "write" and value in (-13, -99):
            reply.update(type="error", code=-value)
        elif f == "write":
            registers[key] = value
            reply.update(type="ok")
        elif f == "cas":
            expected, new = value
            if registers.get(key) == expected:
                registers[key] = new
                reply.update(type="ok", value=value)
            else:
                reply.update(type="fail", error="cas-mismatch")
        else:
            reply.update(type="error", code=10, text=f"unsupported f {f}")
        send(reply)


if __name__ == "__main__":
    main()
