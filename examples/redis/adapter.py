#!/usr/bin/env python3
"""A Redis adapter for splitbrain, in Python with only the standard library.

It speaks splitbrain's adapter protocol, version 1 (README.md, "The adapter protocol"): JSON lines,
requests on stdin, answers on stdout, logs on stderr. It tests a Redis primary with
asynchronous replicas (redis.toml, start.sh):

  write, cas  go to the PRIMARY: the handshake's first cluster member (n1), on the same
              Redis port as the adapter's own node.
  read        goes to the node the adapter is bound to (the handshake's `addr`): on a
              replica it answers from the replica's copy, which is what exposes
              asynchronous replication (stale reads, and writes a restarted primary lost).

It speaks RESP (Redis's wire protocol) itself, one fresh connection per request, no
retries. Keys and values are named and encoded as the built-in clients and the etcd
adapter do: the single register (key null) is Redis key "register", an integer key is
its decimal text; every value is stored as its compact JSON text, so a read returns
exactly what was written (an absent key reads as null).

Workloads:
  register / kv  read -> GET on the bound node; write -> SET on the primary;
                 cas [a, b] -> one EVAL on the primary of a Lua script that SETs b if
                 the key holds a (if the key is absent, when a is null). Redis runs a
                 script atomically; its one write is its last step.

Outcomes: a refused connection or a connect timeout (nothing sent) and a failed compare
are `fail`; so is an error reply Redis gives only to a command it did not run
(READONLY, LOADING, MASTERDOWN, OOM, BUSY, ERR, ...). A timeout after sending, a
connection closed or reset after sending, an unreadable reply and an error reply not
known to be a rejection are `info`: the command may have run, or may still.

Usage: adapter.py [--port NAME]
  --port NAME  which of the handshake's ports is Redis's (default: redis). Every node
               uses that port number: nodes differ by address (to run several on one
               host, give them loopback addresses 127.0.0.1, 127.0.0.2, ...).
"""
import argparse
import json
import socket
import sys
import time
import traceback

PROTOCOL = 1
# The built-in clients' key for the single register (REGISTER_KEY in workloads/src/client.rs).
REGISTER_KEY = "register"
WORKLOADS = ("register", "kv")

# Compare-and-set: KEYS[1] the key; ARGV[1] "absent" or "value"; ARGV[2] the expected
# value's JSON text (when "value"); ARGV[3] the new value's JSON text. GET of an absent
# key is `false` in Lua. Returns 1 when it wrote, 0 when the compare failed.
CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == 'absent' and current == false) or (ARGV[1] == 'value' and current == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

# Error replies Redis sends for a command it rejected before running it (the first word
# of the reply). Any other error reply is `info`.
DEFINITE_ERRORS = (
    "ERR", "WRONGTYPE", "READONLY", "LOADING", "MASTERDOWN", "OOM", "BUSY", "NOSCRIPT",
    "NOREPLICAS", "MISCONF", "NOAUTH", "NOPERM", "EXECABORT", "TRYAGAIN", "CLUSTERDOWN",
    "MOVED", "ASK", "CROSSSLOT",
)


class Definite(Exception):
    """The operation certainly did not take effect: `fail`."""


class Indefinite(Exception):
    """The operation may or may not have taken effect: `info`."""


class RedisError(Exception):
    """An error reply (`-PREFIX message`)."""


def log(message):
    print(message, file=sys.stderr, flush=True)


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def to_json(value):
    """A value as stored: compact JSON text, as serde_json writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def from_json(data):
    try:
        return json.loads(data)
    except ValueError:
        raise Indefinite("malformed-reply: stored value is not JSON: %r" % data[:100])


def key_name(key):
    """The Redis key of a history key (null: the single register)."""
    return REGISTER_KEY if key is None else str(key)


def encode(args):
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Reader:
    """Reads one RESP reply from a socket, giving up at a deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def fill(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before answering")
        self.buffer += chunk

    def line(self):
        while b"\r\n" not in self.buffer:
            self.fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buffer) < n + 2:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exactly(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("unknown RESP reply %r" % line[:100])


class Node:
    """One Redis server, reached at host:port with a fresh connection per command."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def call(self, args, deadline):
        """The reply to one command; raises Definite or Indefinite when there is none."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Definite("timeout")  # nothing was sent
        try:
            sock = socket.create_connection((self.host, self.port), timeout=remaining)
        except socket.timeout:
            raise Definite("timeout")  # nothing was sent
        except OSError as e:
            raise Definite("connection-refused: connect to %s:%s: %s" % (self.host, self.port, e))
        try:
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.sendall(encode(args))
                reply = Reader(sock, deadline).reply()
            except socket.timeout:
                raise Indefinite("timeout")
            except (ValueError, UnicodeDecodeError) as e:
                raise Indefinite("malformed-reply: %s" % e)
            except OSError as e:  # ConnectionError included
                raise Indefinite("connection-closed: %s" % e)
        finally:
            sock.close()
        if isinstance(reply, RedisError):
            message = str(reply)
            error = "redis-error: %s:%s: %s" % (self.host, self.port, message)
            if message.split(" ", 1)[0] in DEFINITE_ERRORS:
                raise Definite(error)
            raise Indefinite(error)
        return reply


class Adapter:
    def __init__(self, own, primary, timeout):
        # The node this adapter is bound to: reads.
        self.own = own
        # The primary: writes and compare-and-set.
        self.primary = primary
        self.timeout = timeout

    def handle(self, f, key, value):
        """The answer to one request (without its id)."""
        deadline = time.monotonic() + self.timeout
        k = key_name(key)
        if f == "read":
            stored = self.own.call(["GET", k], deadline)
            if stored is not None and not isinstance(stored, bytes):
                raise Indefinite("malformed-reply: GET answered %r" % (stored,))
            return {"type": "ok", "value": None if stored is None else from_json(stored)}
        if f == "write":
            reply = self.primary.call(["SET", k, to_json(value)], deadline)
            if reply != "OK":
                raise Indefinite("malformed-reply: SET answered %r" % (reply,))
            return {"type": "ok"}
        if f == "cas":
            if not (isinstance(value, list) and len(value) == 2):
                return {"type": "fail", "error": "bad-op: cas needs [expected, new], got %s" % json.dumps(value)}
            expected, new = value
            if expected is None:
                condition = ["absent", b""]
            else:
                condition = ["value", to_json(expected)]
            reply = self.primary.call(["EVAL", CAS_SCRIPT, "1", k] + condition + [to_json(new)], deadline)
            if reply == 1:
                return {"type": "ok"}
            if reply == 0:
                return {"type": "fail", "error": "cas-mismatch"}
            raise Indefinite("malformed-reply: the cas script answered %r" % (reply,))
        return {"type": "fail", "error": "unsupported-op: this adapter cannot perform `%s`" % f}


def handshake(args):
    """Reads `init`; returns the adapter, or None after refusing."""
    line = sys.stdin.readline()
    if not line:
        return None
    try:
        init = json.loads(line)
    except ValueError:
        send({"type": "error", "error": "the first line is not JSON: %r" % line[:200]})
        return None
    if init.get("type") != "init" or init.get("protocol") != PROTOCOL:
        send({"type": "error", "error": "expected an init message for protocol %d, got %r" % (PROTOCOL, line[:200])})
        return None
    workload = init.get("workload")
    if workload not in WORKLOADS:
        send({"type": "error", "error": "workload %r is not supported (only %s)" % (workload, ", ".join(WORKLOADS))})
        return None
    port = (init.get("ports") or {}).get(args.port)
    if port is None:
        send({"type": "error", "error": "the handshake names no port %r (ports: %s)" % (args.port, init.get("ports"))})
        return None
    cluster = init.get("cluster") or []
    if not cluster or not cluster[0].get("addr"):
        send({"type": "error", "error": "the handshake's cluster list is empty: the primary is its first member"})
        return None
    # Give up a little before the harness does, so that a timeout is our own `info`
    # and the harness need not kill us.
    timeout = 0.8 * init.get("timeout_ms", 5000) / 1000.0
    log("redis adapter for %s: reads from %s:%s, writes to the primary %s at %s:%s, %s, timeout %.3fs" % (
        init.get("node"), init["addr"], port, cluster[0].get("name"), cluster[0]["addr"], port,
        workload, timeout))
    send({"type": "init_ok"})
    return Adapter(Node(init["addr"], port), Node(cluster[0]["addr"], port), timeout)


def main():
    parser = argparse.ArgumentParser(description="splitbrain's Redis adapter (protocol %d)" % PROTOCOL)
    parser.add_argument("--port", default="redis", help="the handshake's name of the Redis port")
    args = parser.parse_args()
    adapter = handshake(args)
    if adapter is None:
        return 1
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        rid = request.get("id")
        try:
            answer = adapter.handle(request.get("f"), request.get("key"), request.get("value"))
        except Definite as e:
            answer = {"type": "fail", "error": str(e)}
        except Indefinite as e:
            answer = {"type": "info", "error": str(e)}
        except Exception as e:  # a bug here: the request may have been sent
            log(traceback.format_exc())
            answer = {"type": "info", "error": "adapter-bug: %s" % e}
        send({"id": rid, **answer})
    return 0


if __name__ == "__main__":
    sys.exit(main())
