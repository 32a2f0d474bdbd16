#!/usr/bin/env python3
"""An etcd adapter for splitbrain, in Python with only the standard library.

It speaks splitbrain's adapter protocol, version 1 (README.md, "The adapter protocol"): JSON lines,
requests on stdin, answers on stdout, logs on stderr. It is the protocol's conformance
example: it performs the same requests as splitbrain's built-in etcd client
(workloads/src/etcd.rs), so the two give alike histories.

It talks HTTP/1.1 to etcd's v3 JSON gateway on the node's client port (`/v3/kv/range`,
`/v3/kv/put`, `/v3/kv/txn`), one fresh connection per request, no retries. Keys and
values travel base64-encoded; every value is stored as its compact JSON text, so a read
returns exactly what was written (absent reads as null); 64-bit integers arrive as JSON
strings; a txn whose compare failed has no `succeeded` key at all.

Workloads:
  register / kv  read -> range; write -> put; cas [a, b] -> txn comparing the key's
                 VALUE with a (its CREATE revision with 0 when a is null) that puts b.
                 The single register (key null) is etcd key "register".
  set            add v -> put "set/<v>"; read -> range over the "set/" prefix.
  mutex          acquire -> txn putting the owner's token if the key "mutex" is absent;
                 release -> txn deleting it if it holds the owner's token.
  list-append    Jepsen's way: one txn of ranges reads every key at one revision, the
                 micro-ops are applied to that snapshot, then one txn guarded by each
                 key's mod_revision puts the grown lists. A failed guard is a fail.

Outcomes: a refused connection, a connect timeout (nothing sent), HTTP 400 and a failed
compare are `fail`; a timeout after sending, a connection reset after sending, an
unreadable answer and HTTP 503 "request timed out" (etcd without a quorum: the write may
still commit) are `info`. Every answer carries the extra field `revision`: etcd's
`header.revision` of the (last) gateway answer.

Usage: adapter.py [--serializable] [--port NAME]
  --serializable  reads are `"serializable": true` (from the member's local state,
                  possibly stale) instead of linearizable
  --port NAME     which of the handshake's ports is the client port (default: client)
"""
import argparse
import base64
import http.client
import json
import socket
import sys
import time
import traceback

PROTOCOL = 1
# The built-in clients' keys (REGISTER_KEY, MUTEX_KEY, SET_KEY in workloads/src/client.rs).
REGISTER_KEY = "register"
MUTEX_KEY = "mutex"
SET_KEY = "set"
WORKLOADS = ("register", "kv", "set", "mutex", "list-append")


class Definite(Exception):
    """The operation certainly did not take effect: `fail`."""


class Indefinite(Exception):
    """The operation may or may not have taken effect: `info`."""


def log(message):
    print(message, file=sys.stderr, flush=True)


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text or "")


def to_json(value):
    """A value as stored: compact JSON text, as serde_json writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def from_json(data):
    try:
        return json.loads(data)
    except ValueError:
        raise Indefinite("malformed-reply: stored value is not JSON: %r" % data[:100])


def key_name(key, default):
    """The etcd key of a history key (null: the workload's single object)."""
    return default if key is None else str(key)


class Gateway:
    """etcd's v3 JSON gateway on one member."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        # The `header.revision` of the last answer.
        self.revision = None

    def call(self, path, body, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Definite("timeout")  # nothing was sent
        conn = http.client.HTTPConnection(self.host, self.port, timeout=remaining)
        try:
            try:
                conn.connect()
            except socket.timeout:
                raise Definite("timeout")
            except OSError as e:
                raise Definite("connection-refused: connect to %s:%s: %s" % (self.host, self.port, e))
            try:
                conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                conn.request("POST", path, body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                raw = response.read()
            except socket.timeout:
                raise Indefinite("timeout")
            except (OSError, http.client.HTTPException) as e:
                raise Indefinite("connection-closed: %s" % (e,))
        finally:
            conn.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            raise Indefinite("malformed-reply: %r" % raw[:200])
        if not isinstance(answer, dict):
            raise Indefinite("malformed-reply: %r" % raw[:200])
        if response.status == 200:
            revision = answer.get("header", {}).get("revision")
            if revision is not None:
                self.revision = int(revision)
            return answer
        code = answer.get("code")
        error = "etcd-error: etcd answered HTTP %d: %s" % (
            response.status, answer.get("error") or answer.get("message") or raw[:200])
        # The gateway rejects a bad request before it reaches consensus (3 invalid
        # argument, 11 out of range); anything else (503 "request timed out") is unknown.
        if response.status == 400 or code in (3, 11):
            raise Definite(error)
        raise Indefinite(error)


class Adapter:
    def __init__(self, gateway, workload, serializable, timeout):
        self.gateway = gateway
        self.workload = workload
        self.serializable = serializable
        self.timeout = timeout

    def range_body(self, key, range_end=None):
        body = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        if self.serializable:
            body["serializable"] = True
        return body

    def handle(self, f, key, value):
        """The answer to one request (without its id)."""
        deadline = time.monotonic() + self.timeout
        w = self.workload
        if w in ("register", "kv") and f == "read":
            return self.read(key_name(key, REGISTER_KEY), deadline)
        if w in ("register", "kv") and f == "write":
            k = key_name(key, REGISTER_KEY)
            self.gateway.call("/v3/kv/put", {"key": b64(k), "value": b64(to_json(value))}, deadline)
            return {"type": "ok"}
        if w in ("register", "kv") and f == "cas":
            if not (isinstance(value, list) and len(value) == 2):
                return {"type": "fail", "error": "bad-op: cas needs [expected, new], got %s" % json.dumps(value)}
            k = key_name(key, REGISTER_KEY)
            put = {"request_put": {"key": b64(k), "value": b64(to_json(value[1]))}}
            return self.guarded(k, value[0], put, "cas-mismatch", deadline)
        if w == "mutex" and f in ("acquire", "release"):
            if value is None:
                return {"type": "fail", "error": "bad-op: `%s` needs an owner token as its value" % f}
            k = key_name(key, MUTEX_KEY)
            if f == "acquire":
                then, expected = {"request_put": {"key": b64(k), "value": b64(to_json(value))}}, None
            else:
                then, expected = {"request_delete_range": {"key": b64(k)}}, value
            return self.guarded(k, expected, then, "lock-not-free-or-not-ours", deadline)
        if w == "set" and f == "add":
            element = to_json(value)
            k = key_name(key, SET_KEY).encode() + b"/" + element
            self.gateway.call("/v3/kv/put", {"key": b64(k), "value": b64(element)}, deadline)
            return {"type": "ok"}
        if w == "set" and f == "read":
            prefix = key_name(key, SET_KEY)
            answer = self.gateway.call(
                "/v3/kv/range", self.range_body(prefix + "/", prefix + "0"), deadline)
            return {"type": "ok", "value": [from_json(unb64(kv.get("value"))) for kv in answer.get("kvs", [])]}
        if w == "list-append" and f == "txn":
            return self.list_append(value, deadline)
        return {"type": "fail",
                "error": "unsupported-op: this adapter cannot perform `%s` for %s" % (f, w)}

    def read(self, key, deadline):
        answer = self.gateway.call("/v3/kv/range", self.range_body(key), deadline)
        kvs = answer.get("kvs") or []
        value = from_json(unb64(kvs[0].get("value"))) if kvs else None
        return {"type": "ok", "value": value}

    def guarded(self, key, expected, then, mismatch, deadline):
        """A txn running `then` if `key` holds `expected` (None: the key is absent)."""
        if expected is None:
            compare = {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            compare = {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(to_json(expected))}
        answer = self.gateway.call("/v3/kv/txn", {"compare": [compare], "success": [then]}, deadline)
        # A txn whose compare failed has no `succeeded` at all (defaults are omitted).
        if answer.get("succeeded") is True:
            return {"type": "ok"}
        return {"type": "fail", "error": mismatch}

    def list_append(self, micro_ops, deadline):
        if not isinstance(micro_ops, list):
            return {"type": "fail", "error": "bad-op: txn needs a list of micro-ops"}
        parsed = []
        for micro in micro_ops:
            if not (isinstance(micro, list) and len(micro) == 3 and isinstance(micro[0], str)
                    and isinstance(micro[1], (int, str)) and not isinstance(micro[1], bool)):
                return {"type": "fail", "error": "bad-op: micro-op must be [f, key, value], got %s" % json.dumps(micro)}
            if micro[0] not in ("r", "read", "append"):
                return {"type": "fail", "error": "bad-op: unknown micro-op `%s`" % micro[0]}
            parsed.append((micro[0], str(micro[1]), micro[2]))
        keys = sorted({k for _, k, _ in parsed})
        # 1. One snapshot of every key (a txn's ranges share one revision). Nothing is
        # written yet: whatever goes wrong here, the transaction had no effect.
        try:
            ranges = [{"request_range": {"key": b64(k)}} for k in keys]
            snapshot = self.gateway.call("/v3/kv/txn", {"success": ranges}, deadline)
            responses = snapshot.get("responses") or []
            if len(responses) != len(keys):
                raise Indefinite("malformed-reply: %d ranges answered with %d responses" % (len(keys), len(responses)))
            lists = {}
            for k, response in zip(keys, responses):
                kvs = response.get("response_range", {}).get("kvs") or []
                if not kvs:
                    lists[k] = ([], 0, False)
                    continue
                current = from_json(unb64(kvs[0].get("value")))
                if current is None:
                    current = []
                if not isinstance(current, list):
                    raise Indefinite("malformed-reply: key %s does not hold a list" % k)
                lists[k] = (current, int(kvs[0].get("mod_revision", "0")), False)
        except (Definite, Indefinite) as e:
            return {"type": "fail", "error": str(e)}
        # 2. Apply the micro-ops to the snapshot.
        completed = []
        for (f, k, v), micro in zip(parsed, micro_ops):
            items, revision, grew = lists[k]
            if f == "append":
                lists[k] = (items + [v], revision, True)
                completed.append(micro)
            else:
                completed.append([micro[0], micro[1], list(items)])
        if not any(grew for _, _, grew in lists.values()):
            return {"type": "ok", "value": completed}
        # 3. Commit, guarded by every key's revision in the snapshot.
        compare = [{"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}
                   for k, (_, revision, _) in sorted(lists.items())]
        puts = [{"request_put": {"key": b64(k), "value": b64(to_json(items))}}
                for k, (items, _, grew) in sorted(lists.items()) if grew]
        answer = self.gateway.call("/v3/kv/txn", {"compare": compare, "success": puts}, deadline)
        if answer.get("succeeded") is True:
            return {"type": "ok", "value": completed}
        return {"type": "fail", "error": "txn-conflict"}


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
    # Give up a little before the harness does, so that a timeout is our own `info`
    # and the harness need not kill us.
    timeout = 0.8 * init.get("timeout_ms", 5000) / 1000.0
    log("etcd adapter for %s at %s:%s, %s, %s reads, timeout %.3fs" % (
        init.get("node"), init["addr"], port, workload,
        "serializable" if args.serializable else "linearizable", timeout))
    send({"type": "init_ok"})
    return Adapter(Gateway(init["addr"], port), workload, args.serializable, timeout)


def main():
    parser = argparse.ArgumentParser(description="splitbrain's etcd adapter (protocol %d)" % PROTOCOL)
    parser.add_argument("--serializable", action="store_true", help="serializable (possibly stale) reads")
    parser.add_argument("--port", default="client", help="the handshake's name of the client port")
    args = parser.parse_args()
    adapter = handshake(args)
    if adapter is None:
        return 1
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        rid = request.get("id")
        adapter.gateway.revision = None
        try:
            answer = adapter.handle(request.get("f"), request.get("key"), request.get("value"))
        except Definite as e:
            answer = {"type": "fail", "error": str(e)}
        except Indefinite as e:
            answer = {"type": "info", "error": str(e)}
        except Exception as e:  # a bug here: the request may have been sent
            log(traceback.format_exc())
            answer = {"type": "info", "error": "adapter-bug: %s" % e}
        answer = {"id": rid, **answer}
        if adapter.gateway.revision is not None:
            answer["revision"] = adapter.gateway.revision
        send(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
