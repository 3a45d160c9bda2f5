"""A minimal Flask app: the classic first containerised web service."""

import os
import socket

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    name = os.environ.get("NAME", "world")
    return f"Hello, {name}! (from {socket.gethostname()})\n"


@app.route("/health")
def health():
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
