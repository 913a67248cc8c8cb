#!/usr/bin/env python3
"""A scripted HTTP peer for CurlHTTPTests: answers each connection with
raw bytes from a script, so that a test can send what no well-behaved
server would (bad framing, trickled bytes, a hang, a drop).

  scripted_server.py --port-file F --requests-file R [--tls-cert C --tls-key K]

The script comes on stdin, JSON: a list of steps played for every
connection: {"send": "<text, \\r\\n as is>"}, {"sleep": seconds},
{"trickle": "<text>", "every": seconds} (one byte at a time), {"hang": true};
a first step {"at_once": true} answers without reading a request (as a
plain HTTP server answers a TLS ClientHello).
The connection closes after the last step, unless a first step
{"keep_alive": true} keeps it for the next request, which gets the same
steps; with "drop_reused_post": true there, a POST that comes on a kept
connection (as its second request or later) is recorded, then the
connection is closed without an answer: what a server does when its idle
timeout and the request cross.
Each request received (its head and body, as text, and the number of the
connection it came on) is appended to the requests file as a JSON line.
"""
import argparse, json, socket, ssl, sys, threading, time

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--requests-file", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    steps = json.load(sys.stdin)
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    lock = threading.Lock()
    first = steps[0] if steps else {}
    connections = [0]

    def serve(conn):
        with lock:
            connections[0] += 1
            number = connections[0]
        try:
            if context:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused the certificate
            if first.get("at_once"):
                conn.recv(65536)
                data = b"\r\n\r\n"
            else:
                data = b""
            served = 0
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                data, body = body[length:], body[:length]
                with lock, open(args.requests_file, "a") as f:
                    f.write(json.dumps({"head": head.decode("latin-1"), "body": body.decode("latin-1"),
                                        "connection": str(number)}) + "\n")
                served += 1
                if first.get("drop_reused_post") and served > 1 and head.startswith(b"POST "):
                    return
                for step in steps:
                    if "send" in step:
                        conn.sendall(step["send"].encode("latin-1"))
                    elif "sleep" in step:
                        time.sleep(step["sleep"])
                    elif "trickle" in step:
                        for byte in step["trickle"].encode("latin-1"):
                            conn.sendall(bytes([byte]))
                            time.sleep(step["every"])
                    elif "hang" in step:
                        time.sleep(3600)
                if not first.get("keep_alive"):
                    return
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

main()
