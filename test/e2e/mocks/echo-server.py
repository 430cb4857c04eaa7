"""Stand-in TCP servers for testing validar-echo-server.sh (run in python:3.9.7-slim).

    python3 echo-server.py MODE [PORT]

MODE: echo    answers every chunk with the same bytes (a healthy echo server)
      garble  answers "error reading data: " + the chunk (an unhealthy server)
      mute    accepts, reads, never answers and never closes (must not hang the script)
Exits 0 on SIGTERM so that `docker compose down` is quick.
"""

import signal
import socket
import sys
import threading


def serve(conn: socket.socket, mode: str) -> None:
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                if mode == "mute":
                    threading.Event().wait()  # keep the half-closed connection open
                return
            if mode == "echo":
                conn.sendall(data)
            elif mode == "garble":
                conn.sendall(b"error reading data: " + data)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "echo"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 12345
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with socket.create_server(("0.0.0.0", port), reuse_port=False) as listener:
        print(f"mock server ({mode}) listening on {port}", flush=True)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
