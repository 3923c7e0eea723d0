"""A TCP proxy on loopback that can pass, delay or cut connections to a real server."""
from __future__ import annotations

import socket
import threading
import time


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = 0.0          # seconds added before forwarding each chunk from the server
        self.latency = 0.0        # seconds added once per request/answer exchange (a distant server)
        self.cut = False          # refuse new connections and drop open ones
        self.stall = False        # accept connections but forward nothing: the server never sees the request
        self.held = 0             # chunks a stall has held so far (tests: a read really was stalled)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):  # forward each chunk at once, as the endpoints' own sockets do (no Nagle)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            asked = threading.Event()  # the client sent something the server has not answered yet
            threading.Thread(target=self._pipe, args=(client, upstream, False, asked), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True, asked), daemon=True).start()

    def _pipe(self, src, dst, from_server, asked):
        try:
            while not self._stop:
                data = src.recv(65536)
                if not data or self.cut:
                    break
                if self.stall:
                    self.held += 1
                while self.stall and not self.cut and not self._stop:
                    time.sleep(0.01)
                if self.cut or self._stop:
                    break  # held data is dropped, never delivered late
                if from_server and self.delay:
                    time.sleep(self.delay)
                if from_server and self.latency and asked.is_set():
                    asked.clear()
                    time.sleep(self.latency)
                elif not from_server:
                    asked.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def drop_all(self):
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._open.clear()

    def close(self):
        self._stop = True
        self.drop_all()
        self._server.close()


if __name__ == "__main__":
    # A proxy in a process of its own (benchmarks: its threads must not share the measured
    # process's GIL): python -m reliability.proxy TARGET_PORT LATENCY_MS; prints its port.
    import sys
    proxy = Proxy(int(sys.argv[1]))
    proxy.latency = float(sys.argv[2]) / 1000
    print(proxy.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    proxy.close()
