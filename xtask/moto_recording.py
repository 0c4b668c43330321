"""The emulator, recording every request it serves as one JSON line in
MOTO_RECORDER_FILEPATH (moto's own recorder), one request at a time: moto
appends from each request's thread without a lock, which can interleave long
lines. The recording is what infra/authz evaluates against the Terraform
plan's policies."""

import sys
import threading

from moto.moto_api._internal.recorder.models import Recorder
from moto.server import main

_lock = threading.Lock()
_record = Recorder._record_request


def _one_at_a_time(self, request, body=None):
    with _lock:
        _record(self, request, body)


Recorder._record_request = _one_at_a_time

if __name__ == "__main__":
    sys.exit(main())
