"""A model server for the multi-worker test: real scikit-learn model, pid in each answer."""

from __future__ import annotations

import os

from modelmon.demo.model import create_demo_app

app = create_demo_app()


@app.after_request
def worker_pid(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
