"""A TCP proxy on loopback that can pass, delay or cut connections to a real server."""
from __future__ import annotations

import socket
import threading
import time


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = 0.0          # seconds added before forwarding each chunk from the server
        self.cut = False          # refuse new connections and drop open ones
        self.stall = False        # accept connections but forward nothing: the server never sees the request
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
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, from_server):
        try:
            while not self._stop:
                data = src.recv(65536)
                if not data or self.cut:
                    break
                while self.stall and not self.cut and not self._stop:
                    time.sleep(0.01)
                if self.cut or self._stop:
                    break  # held data is dropped, never delivered late
                if from_server and self.delay:
                    time.sleep(self.delay)
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
